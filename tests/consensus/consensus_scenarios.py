"""Running simulated scenarios in tests: one assertion that prints the replay command."""

from __future__ import annotations

from collections.abc import Iterable

from sparkchain.consensus.sim.fakecrypto import fake_public_key
from sparkchain.consensus.sim.plan import Plan
from sparkchain.consensus.sim.runner import Result, run_plan


def key_of(validator: int) -> bytes:
    """The simulator's fake public key of a validator index."""
    return fake_public_key(validator)


def check(result: Result) -> Result:
    """Fail, with the one-line replay command, if the run broke what its faults allow."""
    if result.failures:
        raise AssertionError(f"{result.failures[0]}\n  replay: {result.replay_command}")
    return result


def run_ok(plan: Plan) -> Result:
    result = check(run_plan(plan))
    assert result.finished or not plan.expects_liveness
    return result


def run_all(plans: Iterable[Plan]) -> list[Result]:
    return [run_ok(plan) for plan in plans]
