"""CommitBus: commit waiters, rejection, timeouts and change subscriptions by prefix.

All in-process on the loop alone, so on the virtual clock (tests/helpers/virtual_clock.py):
a waiter's timeout fires at its deadline on the loop's clock, without waiting for it."""

from __future__ import annotations

import asyncio

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.events import CommitBus
from sparkchain.proto import api_pb2

pytestmark = pytest.mark.virtual_clock


def change(height: int, identifier: str) -> api_pb2.ChangeEvent:
    return api_pb2.ChangeEvent(
        height=height,
        identifier=identifier,
        prefix=identifier.split("/", 1)[0],
        operation="register",
    )


async def test_waiter_gets_height_and_index_of_its_tx():
    bus = CommitBus()
    waiting = asyncio.ensure_future(bus.wait_for_tx(b"b", 5))
    await asyncio.sleep(0)
    bus.publish_block(7, [b"a", b"b"], [])
    assert await waiting == (7, 1)
    assert bus.pending_waiters() == 0


async def test_late_waiter_is_answered_from_recent_commits_and_memory_is_bounded():
    bus = CommitBus(remembered=2)
    bus.publish_block(1, [b"a", b"b", b"c"], [])
    assert await bus.wait_for_tx(b"c", 0.01) == (1, 2)
    assert bus.committed(b"a") is None  # forgotten: only the 2 latest are kept


async def test_timeout_is_a_timeout_error_and_leaves_no_waiter():
    bus = CommitBus()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(SparkError) as caught:
        await bus.wait_for_tx(b"x", 0.01)
    assert caught.value.code is ErrorCode.TIMEOUT and "78" in caught.value.message
    assert loop.time() - start == pytest.approx(0.01)  # at its deadline, not before
    assert bus.pending_waiters() == 0


async def test_rejection_reaches_current_and_later_waiters():
    bus = CommitBus()
    waiting = asyncio.ensure_future(bus.wait_for_tx(b"x", 5))
    await asyncio.sleep(0)
    bus.publish_rejected(b"x", SparkError(ErrorCode.EXISTS, "88/A exists"))
    for attempt in (waiting, bus.wait_for_tx(b"x", 5)):
        with pytest.raises(SparkError) as caught:
            await attempt
        assert caught.value.code is ErrorCode.EXISTS


async def test_subscription_sees_only_changes_under_its_prefix():
    bus = CommitBus()
    with bus.subscribe("88.608") as events:
        bus.publish_block(
            3,
            [],
            [
                change(3, "88/A"),
                change(3, "88.608/B"),
                change(3, "88.6080/C"),
                change(3, "88.608.1/D"),
            ],
        )
        got = [await asyncio.wait_for(events.__anext__(), 1) for _ in range(2)]
    assert [e.identifier for e in got] == ["88.608/B", "88.608.1/D"]
    assert bus.subscriber_count == 0


async def test_prefix_match_ignores_ascii_case_and_empty_prefix_sees_all():
    bus = CommitBus()
    lower = bus.subscribe("88.abc")
    everything = bus.subscribe("")
    bus.publish_block(1, [], [change(1, "88.ABC/x"), change(1, "99/y")])
    assert (await lower.__anext__()).identifier == "88.ABC/x"
    assert [(await everything.__anext__()).identifier for _ in range(2)] == ["88.ABC/x", "99/y"]
    lower.close()
    everything.close()


async def test_a_subscriber_that_falls_behind_is_closed_with_a_reason():
    bus = CommitBus()
    slow = bus.subscribe("", max_queued=2)
    bus.publish_block(1, [], [change(1, f"88/{i}") for i in range(5)])
    assert (await slow.__anext__()).identifier == "88/0"
    assert (await slow.__anext__()).identifier == "88/1"
    with pytest.raises(SparkError) as caught:
        await slow.__anext__()
    assert caught.value.code is ErrorCode.UNAVAILABLE and "from_height" in caught.value.message
    assert bus.subscriber_count == 0
