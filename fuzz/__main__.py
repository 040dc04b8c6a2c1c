"""`make fuzz` = `python -m fuzz`: every target for its share of the time budget.

    FUZZ_SECONDS   total wall-clock budget in seconds (default 600), shared evenly by the
                   targets: each fuzzes for its share less its start-up (importing and
                   instrumenting the decoders, ~5 s on an idle machine, 15-30 s on a loaded
                   one), and for at least MIN_SECONDS_PER_TARGET
    FUZZ_TARGETS   comma-separated target names (default: all, see fuzz/targets.py)
    FUZZ_ENGINE    atheris (default when it imports) or hypothesis

Each target runs from its committed seeds (fuzz/corpus/<target>/) plus the inputs that
once crashed it (fuzz/regressions/<target>/); what the fuzzer adds to the corpus goes to a
temporary folder and is dropped. A crashing input is written to fuzz/crashes/ (not
committed): make it a regression (copy it into fuzz/regressions/<target>/, fix the decoder,
add a test), then replay it with `python -m fuzz.replay <target> <file>`. Exit 0 only when
every target ran and none crashed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fuzz.targets import TARGETS, Target

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"
CRASHES = HERE / "crashes"
DEFAULT_SECONDS = 600
MIN_SECONDS_PER_TARGET = 5
FIRST_STARTUP_GUESS_S = 10
INPUT_TIMEOUT_S = 30  # one input running longer is a crash (unbounded work); the machine is shared
STARTUP_GRACE_S = 180  # interpreter, instrumentation and the fuzz world, on a loaded machine
RSS_LIMIT_MB = 2048


@dataclass(frozen=True)
class Outcome:
    target: str
    executions: int
    fuzz_seconds: int  # the time the fuzzer was given
    seconds: float  # the wall-clock time of the whole run, start-up included
    crash: str  # "" when none: otherwise what crashed and where its input is


def seed_folders(name: str) -> list[Path]:
    return [folder for folder in (CORPUS / name, REGRESSIONS / name) if folder.is_dir()]


def seed_inputs(name: str) -> list[bytes]:
    return [
        path.read_bytes()
        for folder in seed_folders(name)
        for path in sorted(folder.iterdir())
        if path.is_file()
    ]


def run_atheris(target: Target, seconds: int) -> Outcome:
    CRASHES.mkdir(exist_ok=True)
    started = time.monotonic()
    before = set(CRASHES.iterdir())
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.name}-") as work:
        command = [
            sys.executable,
            "-m",
            "fuzz.run_one",
            target.name,
            f"-max_total_time={seconds}",
            f"-timeout={INPUT_TIMEOUT_S}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-max_len={target.max_len}",
            f"-artifact_prefix={CRASHES}/{target.name}-",
            "-print_final_stats=1",
            work,  # libFuzzer adds what it finds to the first folder
            *map(str, seed_folders(target.name)),
        ]
        log_path = Path(work) / "libfuzzer.log"
        with log_path.open("w") as log:
            try:
                code = subprocess.run(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=seconds + INPUT_TIMEOUT_S + STARTUP_GRACE_S,
                    env={**os.environ, "PYTHONPATH": str(HERE.parent)},
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1
        text = log_path.read_text(errors="replace")
    found = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text) or re.findall(
        r"Done (\d+) runs", text
    )
    executions = int(found[-1]) if found else 0
    crash = ""
    if code != 0 or executions == 0:
        written = sorted(set(CRASHES.iterdir()) - before)
        where = ", ".join(str(p) for p in written) or "no input written"
        tail = "\n".join(text.splitlines()[-40:])
        crash = f"exit {code}; input: {where}\n{tail}"
    return Outcome(target.name, executions, seconds, time.monotonic() - started, crash)


def run_hypothesis(target: Target, seconds: int) -> Outcome:
    from fuzz.fallback import fuzz_with_hypothesis

    CRASHES.mkdir(exist_ok=True)
    started = time.monotonic()
    executions, crashing, error = fuzz_with_hypothesis(target, seed_inputs(target.name), seconds)
    crash = ""
    if crashing is not None:
        import hashlib

        path = CRASHES / f"{target.name}-crash-{hashlib.sha1(crashing).hexdigest()}"
        path.write_bytes(crashing)
        crash = f"{error}; input: {path}"
    return Outcome(target.name, executions, seconds, time.monotonic() - started, crash)


def engine() -> str:
    chosen = os.environ.get("FUZZ_ENGINE", "")
    if chosen in ("atheris", "hypothesis"):
        return chosen
    if chosen:
        raise SystemExit(f"FUZZ_ENGINE must be atheris or hypothesis, not {chosen!r}")
    try:
        import atheris  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "hypothesis"
    return "atheris"


def main() -> int:
    budget = int(os.environ.get("FUZZ_SECONDS", DEFAULT_SECONDS))
    names = [n for n in os.environ.get("FUZZ_TARGETS", "").split(",") if n] or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        raise SystemExit(f"unknown fuzz targets {unknown}; known: {', '.join(TARGETS)}")
    deadline = time.monotonic() + budget
    chosen = engine()
    run = run_atheris if chosen == "atheris" else run_hypothesis
    print(f"fuzz: {len(names)} targets in {budget} s with {chosen}", flush=True)
    outcomes: list[Outcome] = []
    startup = FIRST_STARTUP_GUESS_S if chosen == "atheris" else 0.0
    for number, name in enumerate(names):
        share = (deadline - time.monotonic()) / (len(names) - number)
        outcome = run(TARGETS[name], max(MIN_SECONDS_PER_TARGET, int(share - startup)))
        outcomes.append(outcome)
        startup = sum(o.seconds - o.fuzz_seconds for o in outcomes) / len(outcomes)
        status = "CRASH" if outcome.crash else "ok"
        print(
            f"{name:20} {outcome.executions:>9} execs in {outcome.fuzz_seconds:>4} s "
            f"({outcome.executions / outcome.fuzz_seconds:7.0f}/s; {outcome.seconds:5.1f} s "
            f"with start-up)  {status}",
            flush=True,
        )
        if outcome.crash:
            print(outcome.crash, flush=True)
    total = sum(o.executions for o in outcomes)
    crashed = [o.target for o in outcomes if o.crash]
    print(f"fuzz: {total} executions in all; crashed: {', '.join(crashed) or 'none'}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
