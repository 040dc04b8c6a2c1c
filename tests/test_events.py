"""CommitBus: commit waiters, rejection, timeouts and change subscriptions by prefix.

All in-process on the loop alone, so on the virtual clock (tests/helpers/virtual_clock.py):
a waiter's timeout fires at its deadline on the loop's clock, without waiting for it."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import WATCH_BACKLOG_EVENTS, WATCH_SWEEP_INTERVAL_MS
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


async def test_a_subscriber_that_falls_behind_the_shared_log_is_closed_with_a_reason():
    bus = CommitBus(backlog_events=2)
    slow = bus.subscribe("")
    bus.publish_block(1, [], [change(1, "88/0"), change(1, "88/1")])
    assert (await slow.__anext__()).identifier == "88/0"
    bus.publish_block(2, [], [change(2, "88/2"), change(2, "88/3")])
    bus.publish_block(3, [], [change(3, "88/4")])  # 88/1 has left the log
    with pytest.raises(SparkError) as caught:
        await slow.__anext__()
    error = caught.value
    assert error.code is ErrorCode.LIMIT_EXCEEDED
    assert "WATCH_BACKLOG_EVENTS (2)" in error.message and "from_height" in error.message
    assert bus.subscriber_count == 0
    with pytest.raises(StopAsyncIteration):
        await slow.__anext__()


async def test_a_subscriber_stuck_away_from_the_log_is_closed_within_a_sweep_interval():
    """A Watch stream stuck writing to a client that does not read never comes back to
    find out: the bus closes it and tells its owner, one sweep interval after it fell
    behind, without waiting for the next block."""
    bus = CommitBus(backlog_events=2)
    told: list[SparkError] = []
    stuck = bus.subscribe("", "10.0.0.1", told.append)
    keeping_up = bus.subscribe("", "10.0.0.2", told.append)
    bus.publish_block(1, [], [change(1, "88/0"), change(1, "88/1")])
    assert [(await keeping_up.__anext__()).identifier for _ in range(2)] == ["88/0", "88/1"]
    bus.publish_block(2, [], [change(2, "88/2"), change(2, "88/3")])  # 88/0 left the log
    assert told == [] and bus.subscriber_count == 2  # the sweep runs later, not in publish
    await asyncio.sleep(WATCH_SWEEP_INTERVAL_MS / 1000)
    assert bus.subscriber_count == 1 and stuck.closed and not keeping_up.closed
    assert [error.code for error in told] == [ErrorCode.LIMIT_EXCEEDED]
    assert "WATCH_BACKLOG_EVENTS (2)" in told[0].message
    with pytest.raises(SparkError) as caught:  # and its reader, back at last, hears why
        await stuck.__anext__()
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED
    with pytest.raises(StopAsyncIteration):
        await stuck.__anext__()
    keeping_up.close()


async def test_the_log_is_bounded_in_bytes_too():
    bus = CommitBus(backlog_bytes=3100)
    reader = bus.subscribe("")
    for height in range(1, 6):
        large = change(height, "88/" + "x" * 1000)
        bus.publish_block(height, [], [large])
    assert bus.logged_changes == 3  # 5 changes of ~1 kB: the 2 oldest let go
    with pytest.raises(SparkError) as caught:
        await reader.__anext__()
    assert "WATCH_BACKLOG_BYTES (3100)" in caught.value.message


async def test_the_newest_block_stays_whole_however_many_changes_it_has():
    bus = CommitBus(backlog_events=2)
    reader = bus.subscribe("")
    bus.publish_block(1, [], [change(1, f"88/{i}") for i in range(5)])
    assert [(await reader.__anext__()).identifier for _ in range(5)] == [
        f"88/{i}" for i in range(5)
    ]
    reader.close()
    bus.publish_block(2, [], [change(2, "88/5")])
    assert bus.logged_changes == 1  # with nobody reading, older changes are let go


async def test_a_reader_waiting_at_the_head_wakes_on_the_next_block_and_on_close():
    bus = CommitBus()
    reader = bus.subscribe("88")
    waiting = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0)
    bus.publish_block(1, [], [change(1, "99/no"), change(1, "88/yes")])
    assert (await asyncio.wait_for(waiting, 1)).identifier == "88/yes"
    waiting = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0)
    reader.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 1)


async def test_a_cancelled_reader_does_not_disturb_the_others():
    bus = CommitBus()
    first, second = bus.subscribe(""), bus.subscribe("")
    cancelled = asyncio.ensure_future(first.__anext__())
    waiting = asyncio.ensure_future(second.__anext__())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    bus.publish_block(1, [], [change(1, "88/A")])
    assert (await asyncio.wait_for(waiting, 1)).identifier == "88/A"
    first.close()
    second.close()


async def test_a_reader_skips_a_block_it_does_not_watch_in_one_step(monkeypatch):
    """Each reader filters in its own task, but still on the node's one event loop: a
    reader of one prefix must not check every change of a busy chain one by one."""
    from sparkchain.node import events

    bus = CommitBus()
    reader = bus.subscribe("99")
    bus.publish_block(1, [], [change(1, f"88/{i}") for i in range(100)])
    bus.publish_block(2, [], [change(2, "88/x"), change(2, "99/y")])
    checks = 0
    checked = events.prefix_matches

    def counting_prefix_matches(watched_key: str, event: api_pb2.ChangeEvent) -> bool:
        nonlocal checks
        checks += 1
        return checked(watched_key, event)

    monkeypatch.setattr(events, "prefix_matches", counting_prefix_matches)
    assert (await reader.__anext__()).identifier == "99/y"
    assert checks == 2  # block 2's two changes; none of block 1's hundred
    reader.close()


async def test_a_thousand_never_reading_subscribers_cost_the_commit_nothing(monkeypatch):
    """Issue 10 finding 3: with every change fanned out per subscriber on the commit path,
    4,000 Watch streams that never read froze the chain. Now publishing touches no
    subscriber (no prefix check, no queue), the changes are held once however many watch,
    and waiters of txs are still answered at each commit."""
    from sparkchain.node import events

    bus = CommitBus()
    never_read = [bus.subscribe(f"88.{i % 7}", f"10.0.{i // 250}.{i % 250}") for i in range(1000)]
    blocks = [
        [change(height, f"88.{i % 7}/{height}-{i}") for i in range(100)] for height in range(1, 41)
    ]
    checks = 0

    def counting_prefix_matches(watched_key: str, event: api_pb2.ChangeEvent) -> bool:
        nonlocal checks
        checks += 1
        return watched_key == "" or event.prefix.startswith(watched_key)

    monkeypatch.setattr(events, "prefix_matches", counting_prefix_matches)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for height, changes in enumerate(blocks, start=1):
            committed = asyncio.ensure_future(bus.wait_for_tx(b"tx%d" % height, 5))
            await asyncio.sleep(0)
            bus.publish_block(height, [b"tx%d" % height], changes)
            assert await committed == (height, 0)  # commits keep happening
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert checks == 0  # no per-subscriber work while publishing 4,000 changes
    # the changes are held once, in the shared log, not once per subscriber (1,000 queues
    # of 4,000 events would be over 30 MB of references alone)
    assert bus.logged_changes <= WATCH_BACKLOG_EVENTS + 100
    assert grown < 2 * 1024 * 1024, grown
    assert bus.subscriber_count == 1000
    for subscription in never_read:
        subscription.close()


async def test_streams_are_capped_per_client_and_in_total():
    bus = CommitBus(max_streams=5, max_streams_per_client=2)
    held = [bus.subscribe("", "10.0.0.1"), bus.subscribe("", "10.0.0.1")]
    with pytest.raises(SparkError) as caught:
        bus.subscribe("", "10.0.0.1")
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "MAX_WATCH_STREAMS_PER_CLIENT (2)" in caught.value.message
    held += [bus.subscribe("", "10.0.0.2"), bus.subscribe("", "10.0.0.3")]
    held.append(bus.subscribe("", "10.0.0.3"))
    with pytest.raises(SparkError) as caught:
        bus.subscribe("", "10.0.0.4")
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "MAX_WATCH_STREAMS (5)" in caught.value.message
    held.pop(0).close()  # a closed stream frees its place in both counts
    held.append(bus.subscribe("", "10.0.0.1"))
    assert bus.subscriber_count == 5
    for subscription in held:
        subscription.close()
    assert bus.subscriber_count == 0 and not bus._streams_by_client
