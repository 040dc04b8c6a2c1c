"""The test-only clock skew (node/clock.py) that the fault harness gives one node."""

from __future__ import annotations

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.clock import TEST_CLOCK_OFFSET_ENV, clock_offset_ms, node_clock
from sparkchain.node.mempool import wall_clock_ms


def test_without_the_variable_the_node_reads_the_host_clock() -> None:
    assert node_clock({}) is wall_clock_ms
    assert node_clock({TEST_CLOCK_OFFSET_ENV: " "}) is wall_clock_ms


def test_an_offset_moves_every_reading_by_that_much() -> None:
    ahead = node_clock({TEST_CLOCK_OFFSET_ENV: "5000"})
    behind = node_clock({TEST_CLOCK_OFFSET_ENV: "-5000"})
    before = wall_clock_ms()
    ahead_reading, behind_reading = ahead(), behind()
    after = wall_clock_ms()
    assert before + 5000 <= ahead_reading <= after + 5000
    assert before - 5000 <= behind_reading <= after - 5000


@pytest.mark.parametrize(
    ("text", "problem"),
    [("5s", "expected an integer of milliseconds, got '5s'"), ("99999999999", "is beyond")],
)
def test_a_bad_offset_is_refused_naming_the_variable(text: str, problem: str) -> None:
    with pytest.raises(SparkError) as refused:
        clock_offset_ms({TEST_CLOCK_OFFSET_ENV: text})
    assert refused.value.code == ErrorCode.INVALID_CONFIG
    assert refused.value.message.startswith(TEST_CLOCK_OFFSET_ENV + ": ")
    assert problem in refused.value.message
