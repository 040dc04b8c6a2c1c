"""`make profile` (issue 15): where the ledger bench's time goes, as flame graphs.

    python -m bench.ledger_profile [--sizes 10000,1000000] [--out bench/profiles]

For each size: the filled ledger of bench/ledger_bench.py (built and cached first, outside
the profile), then a child process runs the measured phases on a copy of it under py-spy
(`--format raw`, 100 samples/s, the process's Python threads): blocks of one
RegisterBatch of 1000, blocks of 1000 single Registers, plain resolves and resolves with
proof, as ledger_bench times them. Each phase is a function of its own (`phase_*`), so
the flame graph `ledger-<size>.svg` shows them side by side, and `ledger-<size>.txt`
lists the top functions of each phase, by samples taken in them (self) and on the stack
(inclusive). bench/profiles/ is git-ignored.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import flame
from bench.ledger_bench import (
    BLOCK_IDS,
    PROOF_SAMPLE,
    RESOLVE_SAMPLE,
    WARM_UP_BLOCKS,
    Writer,
    bench_genesis,
    filled_ledger,
    identifier,
)
from sparkchain.node.ledger import Ledger
from sparkchain.proto import types_pb2 as pb

PROFILED_BLOCKS = 20
SAMPLES_PER_S = 100
PHASES = ("phase_batch", "phase_single", "phase_resolve", "phase_proof")
TOP_ITEMS = 15


def phase_batch(writer: Writer, blocks: list[list[pb.SignedTx]]) -> None:
    for txs in blocks:
        writer.commit(txs)


def phase_single(writer: Writer, blocks: list[list[pb.SignedTx]]) -> None:
    for txs in blocks:
        writer.commit(txs)


def phase_resolve(ledger: Ledger, names: list[str]) -> None:
    for name in names:
        ledger.resolve(name)


def phase_proof(ledger: Ledger, names: list[str]) -> None:
    for name in names:
        ledger.resolve_with_proof(name)


def workload(db_path: Path, size: int) -> None:
    """The measured phases, on the ledger at `db_path` holding `size` identifiers."""
    rng = random.Random(size)
    with Ledger.open(db_path, bench_genesis(), verify_signatures=False) as ledger:
        writer = Writer(ledger)
        next_free = size
        for _ in range(WARM_UP_BLOCKS):
            writer.commit(writer.batch_txs(next_free))
            next_free += BLOCK_IDS
        # txs are signed before their phase, as ledger_bench signs them before its clock
        batches = [writer.batch_txs(next_free + i * BLOCK_IDS) for i in range(PROFILED_BLOCKS)]
        next_free += PROFILED_BLOCKS * BLOCK_IDS
        phase_batch(writer, batches)
        singles = [writer.single_txs(next_free + i * BLOCK_IDS) for i in range(PROFILED_BLOCKS)]
        phase_single(writer, singles)
        names = [identifier(rng.randrange(size)) for _ in range(RESOLVE_SAMPLE)]
        phase_resolve(ledger, names)
        phase_proof(ledger, names[:PROOF_SAMPLE])


def profile(size: int, out: Path, py_spy: str, say: Callable[[str], None]) -> str:
    """Profile the phases at `size`; the report (also written beside the flame graph)."""
    filled = filled_ledger(size, say)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"ledger-{size}.raw"
    with tempfile.TemporaryDirectory(prefix="ledger-profile-") as tmp:
        db_path = Path(tmp) / "db"
        shutil.copytree(filled / "db", db_path)
        say(f"profiling at {size:,} identifiers")
        subprocess.run(
            [
                py_spy,
                "record",
                "--format",
                "raw",
                "--rate",
                str(SAMPLES_PER_S),
                "--output",
                str(raw),
                "--",
                sys.executable,
                "-m",
                "bench.ledger_profile",
                "--workload",
                str(db_path),
                "--sizes",
                str(size),
            ],
            check=True,
        )
    whole = flame.load(raw, "workload")
    (out / f"ledger-{size}.svg").write_text(flame.svg(whole, f"ledger bench at {size:,} ids"))
    lines = [f"ledger bench at {size:,} identifiers ({sum(whole.values()):,} samples)"]
    for phase in PHASES:
        stacks = flame.load(raw, phase)
        lines += [
            f"\n{phase} ({sum(stacks.values()):,} samples): self",
            flame.table(flame.top_self(stacks, TOP_ITEMS)),
            f"{phase}: inclusive",
            flame.table(flame.top_inclusive(stacks, TOP_ITEMS)),
        ]
    report = "\n".join(lines) + "\n"
    (out / f"ledger-{size}.txt").write_text(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_profile", description=__doc__)
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated sizes")
    parser.add_argument("--out", type=Path, default=Path("bench/profiles"))
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)  # the profiled child
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers, not {args.sizes!r}")
    if args.workload is not None:
        workload(args.workload, sizes[0])
        return 0
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        parser.error("py-spy is not installed: run `make install`")
    for size in sizes:
        print(profile(size, args.out, py_spy, lambda m: print(f"  [profile] {m}", flush=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
