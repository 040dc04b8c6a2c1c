"""How benchmarks print: one titled rich table per benchmark, optionally with goals.

    print_table(
        "Ed25519", ["library", "verifications/s"], [["cryptography", "21,000"]],
        goals=[("≥ 7,500/s", True)],
    )

With `goals`, two columns are added: the goal as text and whether it was met
("yes" / "NO" / "-" when it does not apply), so a reader sees the verdict next to the figure.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

Goal = tuple[str, bool | None]


def rate(per_second: float) -> str:
    """A rate for a table cell: `12,345/s` (or `1.5/s` below 10)."""
    return f"{per_second:,.1f}/s" if per_second < 10 else f"{per_second:,.0f}/s"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def _met(met: bool | None) -> str:
    if met is None:
        return "-"
    return "[green]yes[/green]" if met else "[bold red]NO[/bold red]"


def build_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    goals: Sequence[Goal] | None = None,
    caption: str | None = None,
) -> Table:
    if goals is not None and len(goals) != len(rows):
        raise ValueError(f"{len(goals)} goals for {len(rows)} rows")
    table = Table(title=title, caption=caption, caption_justify="left")
    for index, column in enumerate(columns):
        # the first column names the row; the others hold figures
        table.add_column(column, justify="left" if index == 0 else "right")
    if goals is not None:
        table.add_column("goal", justify="left")
        table.add_column("met?", justify="center")
    for index, row in enumerate(rows):
        cells = [str(cell) for cell in row]
        if len(cells) != len(columns):
            raise ValueError(f"row {index} has {len(cells)} cells for {len(columns)} columns")
        if goals is not None:
            goal, met = goals[index]
            cells += [goal, _met(met)]
        table.add_row(*cells)
    return table


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    goals: Sequence[Goal] | None = None,
    caption: str | None = None,
    console: Console | None = None,
) -> None:
    # piped output (make bench | tee) would otherwise wrap at 80 columns
    wide = Console() if sys.stdout.isatty() else Console(width=160)
    (console or wide).print(build_table(title, columns, rows, goals=goals, caption=caption))
