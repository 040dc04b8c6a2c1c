"""The short chaos schedule on real node processes (issue 14; `make chaos` runs the long one).

A 4-validator + 1-observer testnet, every peer link through the fault proxy, four clients
writing and reading through every node, and each kind of fault once: a partition, slow and
lossy links, a validator paused longer than every timeout, a validator killed -9 and
restarted with its clock skewed then killed and restarted again, and a full disk that must
fail-stop its validator, which must restart cleanly once space returns. Then the checker
(tests/chaos/checker.py) must find nothing, and the chain must have moved on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.nemesis import KINDS
from tests.chaos.run import run_chaos

SEED = 14


def test_a_short_schedule_of_every_fault_breaks_no_invariant(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_chaos(SEED, 60.0, tmp_path / "chaos", short=True, say=lines.append)
    report = "\n".join([*lines, *result.notes, result.summary(), result.replay_text(True)])
    assert result.violations == [], report + "\n" + "\n".join(result.violations)
    disk_ran = "disk" in result.faults_by_kind
    assert set(result.faults_by_kind) == set(KINDS) - {"kill"} - (set() if disk_ran else {"disk"})
    assert result.acknowledged > 0 and result.operations > result.acknowledged, report
    assert result.height > 1
    if not disk_ran:
        pytest.skip("the full-disk nemesis did not run: " + "; ".join(result.notes))
    assert any("stopped on a full disk" in note for note in result.notes), report
