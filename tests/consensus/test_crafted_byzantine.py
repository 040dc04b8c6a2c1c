"""Byzantine validators that craft their own messages (conflicting votes for values really
proposed, votes for past and future rounds, proposals with lying valid rounds), in
coalitions of exactly f: every plan stays safe and commits once the network heals."""

from __future__ import annotations

import pytest
from consensus_scenarios import key_of, run_all

from sparkchain.consensus.sim.plan import SIZES, STRATEGIES, Plan, random_plan


def _plans(strategy: str, n: int) -> list[Plan]:
    f = (n - 1) // 3
    return [
        Plan(
            seed=seed,
            n=n,
            heights=2,
            byzantine=tuple((i, strategy) for i in range(f)),
            loss=0.1,
            gst_ms=1500,
        )
        for seed in range(6)
    ]


@pytest.mark.parametrize("n", [4, 7, 10])
@pytest.mark.parametrize("strategy", ["split-voter", "round-hopper", "valid-round-liar"])
def test_crafted_messages_from_f_validators_neither_fork_nor_stall(strategy: str, n: int) -> None:
    results = run_all(_plans(strategy, n))
    assert all(result.finished for result in results)
    if strategy == "split-voter":
        # its conflicting votes reach correct nodes, which keep them as evidence
        assert any(key_of(0) in result.evidence_against for result in results)


def test_random_plans_draw_every_size_every_strategy_and_full_coalitions() -> None:
    plans = [random_plan(seed) for seed in range(3000)]
    assert {plan.n for plan in plans} == set(SIZES) == set(range(1, 11))
    drawn = {name for plan in plans for _, name in plan.byzantine}
    assert drawn == set(STRATEGIES)
    full = [p for p in plans if p.f and len(p.byzantine_validators) == p.f]
    assert len(full) > len([p for p in plans if p.f]) // 3  # about half use the whole budget
    assert all(len(p.byzantine_validators) <= p.f for p in plans)
