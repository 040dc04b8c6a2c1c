"""Thousands of simulated fault plans (hypothesis builds them; derandomized, so every run of
the suite checks the same plans). Within the fault budget every run must be safe and, once
the network is healthy, live. A failure prints the command that replays its plan alone."""

from __future__ import annotations

from consensus_plans import plans
from consensus_scenarios import check
from hypothesis import HealthCheck, given, settings

from sparkchain.consensus.sim.plan import Plan
from sparkchain.consensus.sim.runner import run_plan

SCENARIOS = {1: 200, 4: 1700, 7: 1100}  # 3,000 plans


def _settings(n: int) -> settings:
    return settings(
        max_examples=SCENARIOS[n],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def _safe_and_live(plan: Plan) -> None:
    assert plan.expects_safety and plan.expects_liveness
    result = check(run_plan(plan))
    assert result.finished


@_settings(1)
@given(plans(1))
def test_single_validator_plans_are_safe_and_live(plan: Plan) -> None:
    _safe_and_live(plan)


@_settings(4)
@given(plans(4))
def test_four_validator_plans_are_safe_and_live(plan: Plan) -> None:
    _safe_and_live(plan)


@_settings(7)
@given(plans(7))
def test_seven_validator_plans_are_safe_and_live(plan: Plan) -> None:
    _safe_and_live(plan)
