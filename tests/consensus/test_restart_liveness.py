"""A height must not halt when the validators locked on a value restart (liveness with at
most f faults). An outside review's replay halted forever: the last-signed record kept the
lock's value and prevotes but not the round's signed proposal, so after the lock holders
restarted a correct peer could no longer count the polka. The record now carries that
proposal and the restart puts it back in the round's log."""

from __future__ import annotations

import zlib

import pytest
from consensus_scenarios import run_ok

from sparkchain.consensus.lastsigned import LastSigned, Lock
from sparkchain.consensus.messages import Proposal, Step, Vote, VoteType
from sparkchain.consensus.sim.plan import Crash, Partition, Plan

REVIEW_REPLAY = (
    '{"seed":0,"n":4,"heights":1,"crashes":['
    '{"node":3,"at_ms":29,"restart_ms":788,"keep_record":false},'
    '{"node":0,"at_ms":100,"restart_ms":200,"keep_record":true},'
    '{"node":1,"at_ms":100,"restart_ms":200,"keep_record":true}],'
    '"partitions":[{"start_ms":0,"end_ms":1500,"groups":[[0,1,3],[2]]}]}'
)


def test_the_reviewers_replay_commits() -> None:
    result = run_ok(Plan.from_json(REVIEW_REPLAY))
    assert result.finished
    assert min(result.heights.values()) >= 1


def _lock_holders_restart(n: int, seed: int, faulty: str) -> Plan:
    """The replay's shape at size n: one faulty validator (amnesiac or byzantine), the
    validators that lock restart with their records, one correct validator is cut off."""
    last = n - 1
    crashes = [Crash(i, 100, 200, keep_record=True) for i in range(n - 2)]
    byzantine: tuple[tuple[int, str], ...] = ()
    if faulty == "amnesiac":
        crashes.append(Crash(last, 29, 788, keep_record=False))
    else:
        byzantine = ((last, faulty),)
    cut = Partition(0, 1500, (tuple(i for i in range(n) if i != n - 2), (n - 2,)))
    return Plan(
        seed=seed, n=n, heights=2, crashes=tuple(crashes), partitions=(cut,), byzantine=byzantine
    )


@pytest.mark.parametrize("n", [4, 5, 6, 7])
@pytest.mark.parametrize("faulty", ["amnesiac", "equivocating-proposer", "double-voter"])
def test_a_height_survives_its_lock_holders_restarting(n: int, faulty: str) -> None:
    for seed in range(8):
        plan = _lock_holders_restart(n, seed, faulty)
        assert plan.expects_liveness
        assert run_ok(plan).finished


def _vote(kind: VoteType, validator: bytes) -> Vote:
    return Vote(kind, 7, 2, b"h" * 32, validator, b"s" * 64)


def test_the_record_keeps_the_locked_rounds_signed_proposal() -> None:
    proposal = Proposal(7, 2, 1, b"h" * 32, b"block", b"p" * 32, b"q" * 64)
    lock = Lock(2, b"h" * 32, b"block", (_vote(VoteType.PREVOTE, b"a" * 32),), proposal)
    record = LastSigned(b"k" * 32, 7, 2, Step.PRECOMMIT, b"h" * 32, -1, b"z" * 64, lock)
    assert LastSigned.from_bytes(record.to_bytes()) == record


def test_a_record_of_the_previous_version_still_reads_without_a_proposal() -> None:
    lock = Lock(2, b"h" * 32, b"block", (_vote(VoteType.PREVOTE, b"a" * 32),))
    record = LastSigned(b"k" * 32, 7, 2, Step.PRECOMMIT, b"h" * 32, -1, b"z" * 64, lock)
    # version 2 is version 3 without the proposal part (5 bytes when absent) and magic 02

    current = record.to_bytes()
    body = b"SPLS\x02" + current[5:-4][:-5]
    older = body + zlib.crc32(body).to_bytes(4, "big")
    assert LastSigned.from_bytes(older) == record
