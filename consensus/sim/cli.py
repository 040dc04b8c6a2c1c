"""Run many simulated scenarios, or replay one.

    python -m sparkchain.consensus.sim.cli --seeds 20000            # plans random_plan(0..19999)
    python -m sparkchain.consensus.sim.cli --replay '<plan json>'   # one plan, with a trace
    python -m sparkchain.consensus.sim.cli --seed 123 --trace       # one seed's plan, with a trace

Exit status 1 when a scenario breaks what its fault budget promises; each failure prints a
one-line command that replays it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from sparkchain.consensus.sim.plan import Plan, random_plan
from sparkchain.consensus.sim.runner import Result, run_plan


def _run_seed(seed: int) -> tuple[int, list[str], str, bool, int]:
    result = run_plan(random_plan(seed))
    return (
        seed,
        [str(v) for v in result.failures],
        result.replay_command,
        result.finished,
        result.events,
    )


def _report_one(result: Result, trace: bool) -> int:
    if trace:
        for line in result.trace:
            print(line)
    print(f"plan: {result.plan.to_json()}")
    print(
        f"heights {result.heights}, finished={result.finished}, end {result.end_ms} ms, "
        f"{result.events} events"
    )
    for violation in result.violations:
        print(f"  {violation}")
    if result.evidence_against:
        print(f"  evidence against {sorted(k[:4].hex() for k in result.evidence_against)}")
    if result.failures:
        print("FAILED")
        return 1
    print("ok")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkchain.consensus.sim.cli", description=__doc__
    )
    parser.add_argument("--seeds", type=int, help="run random plans for seeds 0..N-1")
    parser.add_argument("--start", type=int, default=0, help="first seed (with --seeds)")
    parser.add_argument("--seed", type=int, help="run the random plan of one seed")
    parser.add_argument("--replay", help="run one plan given as JSON")
    parser.add_argument("--trace", action="store_true", help="print every event of one run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.replay is not None or args.seed is not None:
        try:
            plan = Plan.from_json(args.replay) if args.replay else random_plan(args.seed)
        except (ValueError, TypeError, KeyError) as exc:
            parser.error(f"--replay: {exc}")
        return _report_one(run_plan(plan, trace=args.trace), args.trace)
    count = args.seeds if args.seeds is not None else 1000
    seeds = range(args.start, args.start + count)
    started = time.perf_counter()
    failed = 0
    unfinished = 0
    events = 0
    reasons: Counter[str] = Counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for seed, failures, replay, finished, run_events in pool.map(
            _run_seed, seeds, chunksize=32
        ):
            events += run_events
            unfinished += not finished
            if failures:
                failed += 1
                reasons[failures[0].split(" ", 1)[0]] += 1
                print(f"seed {seed}: {failures[0]}")
                print(f"  replay: {replay}")
    elapsed = time.perf_counter() - started
    print(
        f"{count} scenarios, {failed} failed {dict(reasons)}, {unfinished} without progress "
        f"(allowed by their faults), {events} events in {elapsed:.1f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
