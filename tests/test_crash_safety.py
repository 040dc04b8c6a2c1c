"""Crash safety (DESIGN §5): a block and everything it changes land together or not at all.

A child process (tests/helpers/crash_child.py) commits blocks in a loop and reports each
height after `commit_block` returns. It is SIGKILLed at seeded random moments, often in
the middle of a commit. After every kill the ledger must reopen at exactly the last
committed block -- the last reported height or the one after it (killed between the
commit and the report) -- with nothing of the next block present, and replaying the
chain from genesis must reproduce every header's state root.

Replay a failing run alone with `CRASH_SEED=<seed> pytest tests/test_crash_safety.py`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sparkchain.ledger import blocks
from sparkchain.node import schema
from sparkchain.node.chain_check import check_chain
from sparkchain.node.ledger import Ledger
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import make_test_genesis
from tests.helpers.crash_child import block_identifiers

SEED = int(os.environ.get("CRASH_SEED", "20251127"))
LEDGERS = 5
KILLS_PER_LEDGER = 5
MAX_DELAY_S = 0.5
START_TIMEOUT_S = 60.0
REPO = Path(__file__).resolve().parent.parent


def _start_child(ledger_dir: Path, report: Path, seed: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.helpers.crash_child",
            str(ledger_dir),
            str(report),
            str(seed),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_until_open(child: subprocess.Popen[bytes], report: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (report.exists() and report.read_text().startswith("open")):
        if child.poll() is not None:
            raise AssertionError(f"child exited early: {child.stderr.read().decode()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("child did not open the ledger in time")
        time.sleep(0.005)


def _last_reported(report: Path) -> int:
    heights = [int(line.split()[-1]) for line in report.read_text().split("\n") if line]
    return max(heights)


def _check_reopened(ledger: Ledger, reported: int, seed: int, context: str) -> None:
    height = ledger.height
    assert reported <= height <= reported + 1, f"{context}: reopened at {height}"
    db = ledger.db
    if height > 0:
        block, _, cert = ledger.get_block(height)
        header = pb.BlockHeader.FromString(block.header)
        assert blocks.block_hash(block.header) == ledger.last_block_hash, context
        assert header.state_root == ledger.state_root, context
        assert cert is not None and cert.block_hash == ledger.last_block_hash, context
        singles, batch = block_identifiers(height, seed)
        assert ledger.resolve(singles[-1]).created_height == height, context
        if batch:
            assert ledger.resolve(f"88/{batch[-1]}").created_height == height, context
    # nothing of the next block: not its block, change list, records or tx index
    assert db.get(schema.block_key(height + 1)) is None, context
    assert db.get(schema.changes_key(height + 1)) is None, context
    singles, batch = block_identifiers(height + 1, seed)
    for identifier in [singles[0], *(f"88/{s}" for s in batch[:1])]:
        assert db.get(schema.record_key(identifier.upper())) is None, context


def test_sigkill_at_random_moments_keeps_exactly_the_last_committed_block(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    genesis = make_test_genesis()
    kills = 0
    kills_after_progress = 0
    for ledger_number in range(LEDGERS):
        ledger_dir = tmp_path / f"ledger{ledger_number}"
        seed = rng.randrange(2**31)
        for attempt in range(KILLS_PER_LEDGER):
            context = f"CRASH_SEED={SEED} ledger {ledger_number} kill {attempt}"
            report = tmp_path / f"report-{ledger_number}-{attempt}"
            child = _start_child(ledger_dir, report, seed)
            _wait_until_open(child, report)
            time.sleep(rng.uniform(0, MAX_DELAY_S))
            child.send_signal(signal.SIGKILL)
            child.wait()
            assert child.returncode == -signal.SIGKILL, context
            reported = _last_reported(report)
            kills += 1
            with Ledger.open(ledger_dir, genesis, verify_signatures=False) as ledger:
                _check_reopened(ledger, reported, seed, context)
                kills_after_progress += ledger.height > int(report.read_text().split()[1])
            chain_report = check_chain(ledger_dir, genesis, verify_signatures=False)
            assert chain_report.ok, f"{context}: {chain_report.problem}"
    assert kills >= 20
    # the test is only meaningful if the child was mostly killed while committing
    assert kills_after_progress >= kills // 2
