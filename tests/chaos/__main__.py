"""`make chaos [SEED=n] [DURATION=s]`: one seeded chaos run (tests/chaos/run.py).

Ends with `operations: N, acknowledged: N, faults: N, violations: N` and exits 0 only when
violations is 0. A failing run prints its seed, its schedule and where its history is.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from tests.chaos.run import run_chaos

DEFAULT_DURATION_S = 300.0
SHOWN_VIOLATIONS = 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds")
    parser.add_argument("--short", action="store_true", help="the short schedule of make test")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = parser.parse_args(argv)
    if args.duration <= 0:
        parser.error("--duration: must be a positive number of seconds")
    # a SIGTERM (a CI timeout, kill) ends the run through its finally: nodes stopped,
    # tmpfs unmounted
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    workdir = Path(tempfile.mkdtemp(prefix=f"spark-chaos-{seed}-"))
    result = run_chaos(seed, args.duration, workdir, short=args.short)
    for note in result.notes:
        print(note)
    print(
        f"height: {result.height}; faults by kind: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(result.faults_by_kind.items()))
    )
    if result.violations:
        print(f"VIOLATIONS (first {SHOWN_VIOLATIONS}):")
        for violation in result.violations[:SHOWN_VIOLATIONS]:
            print("  " + violation)
        print(result.replay_text(args.short))
        print(f"history and node logs kept in {workdir}")
    elif args.keep:
        print(f"run kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(result.summary())
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
