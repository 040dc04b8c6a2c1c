"""Collapsed stacks (py-spy's `--format raw`) into the top items and an SVG flame graph.

A collapsed stack is one line: `frame;frame;...;frame COUNT`, root first. `load` keeps the
part of each stack below a chosen frame (the measured phase of a run, not its set-up), so
the figures add up to the phase alone.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

Stacks = Counter[tuple[str, ...]]

_FRAME_FILE = re.compile(r" \((?P<file>[^()]*?):\d+\)$")
ROW_PX = 16
WIDTH_PX = 1600


def load(path: Path, below: str) -> Stacks:
    """The stacks of `path` that pass through a frame whose function is `below`, cut so
    that frame is the root; frames lose their line numbers (one box per function)."""
    stacks: Stacks = Counter()
    for line in path.read_text(errors="replace").splitlines():
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        frames = [_short(frame) for frame in text.split(";")]
        starts = [i for i, frame in enumerate(frames) if frame.split(" ", 1)[0] == below]
        if starts:
            stacks[tuple(frames[starts[0] :])] += int(count)
    return stacks


def _short(frame: str) -> str:
    """`func (path/to/sparkchain/ledger/smt.py:12)` -> `func (ledger/smt.py)`."""
    found = _FRAME_FILE.search(frame)
    if found is None:
        return frame
    parts = found.group("file").split("/")
    return f"{frame[: found.start()]} ({'/'.join(parts[-2:])})"


def top_self(stacks: Stacks, count: int) -> list[tuple[str, float]]:
    """The functions where the samples were taken (leaf frames), as shares of the whole."""
    total = sum(stacks.values()) or 1
    leaves: Counter[str] = Counter()
    for stack, samples in stacks.items():
        leaves[stack[-1]] += samples
    return [(name, samples / total) for name, samples in leaves.most_common(count)]


def top_inclusive(stacks: Stacks, count: int) -> list[tuple[str, float]]:
    """The functions on the stack (each counted once per sample), as shares of the whole."""
    total = sum(stacks.values()) or 1
    seen: Counter[str] = Counter()
    for stack, samples in stacks.items():
        for name in set(stack):
            seen[name] += samples
    return [(name, samples / total) for name, samples in seen.most_common(count)]


def svg(stacks: Stacks, title: str) -> str:
    """A flame graph: root at the bottom, each box as wide as its share of the samples."""
    total = sum(stacks.values()) or 1
    tree: dict[str, object] = {}
    depth = 0
    for stack, samples in sorted(stacks.items()):
        node = tree
        depth = max(depth, len(stack))
        for frame in stack:
            entry = node.setdefault(frame, [0, {}])
            assert isinstance(entry, list)
            entry[0] += samples
            node = entry[1]
    height = (depth + 3) * ROW_PX
    boxes: list[str] = []
    _draw(tree, 0.0, 0, height, total, boxes)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" '
            'font-family="monospace" font-size="11">',
            f'<text x="4" y="{ROW_PX - 3}">{html.escape(title)} ({total:,} samples)</text>',
            *boxes,
            "</svg>",
        ]
    )


def _draw(
    node: dict[str, object], x: float, level: int, height: int, total: int, out: list[str]
) -> None:
    for frame, entry in node.items():
        assert isinstance(entry, list)
        samples, children = entry
        width = WIDTH_PX * samples / total
        y = height - (level + 1) * ROW_PX
        if width >= 0.5:
            share = 100 * samples / total
            label = html.escape(frame)
            hue = 20 + sum(frame.encode()) % 40  # stable across runs, unlike hash()
            out.append(
                f"<g><title>{label} ({samples:,} samples, {share:.1f}%)</title>"
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW_PX - 1}" '
                f'fill="hsl({hue},90%,60%)"/>'
                + (
                    f'<text x="{x + 2:.1f}" y="{y + ROW_PX - 4}">'
                    f"{html.escape(frame[: int(width / 7)])}</text>"
                    if width > 30
                    else ""
                )
                + "</g>"
            )
            _draw(children, x, level + 1, height, total, out)
        x += width


def table(rows: Iterable[tuple[str, float]]) -> str:
    return "\n".join(f"  {share * 100:5.1f}%  {name}" for name, share in rows)
