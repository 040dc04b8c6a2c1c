"""`python -m bench [NAME ...] [--quick]`: run benchmarks and print their tables.

Every module in BENCHMARKS exposes `run(quick: bool) -> None`. A NAME may omit the
`_bench` ending (`python -m bench keys`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

BENCHMARKS = (
    "keys_bench",
    "sm2_bench",
    "smt_bench",
    "ledger_bench",
    "prune_bench",
    "consensus_bench",
    "node_bench",
    "gateway_bench",
    "statesync_bench",
)


def _module_name(name: str) -> str | None:
    for candidate in (name, f"{name}_bench"):
        if candidate in BENCHMARKS:
            return candidate
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run sparkchain benchmarks (figures with baselines measured in the same run).",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    args = parser.parse_args(argv)

    selected = []
    for name in args.names or BENCHMARKS:
        module = _module_name(name)
        if module is None:
            parser.error(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        selected.append(module)

    for module in selected:
        started = time.perf_counter()
        importlib.import_module(f"bench.{module}").run(args.quick)
        print(f"[{module}: {time.perf_counter() - started:.1f} s]\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
