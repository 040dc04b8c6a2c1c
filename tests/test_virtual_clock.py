"""The virtual clock (tests/helpers/virtual_clock.py) and the `virtual_clock` marker: time
stands still while anything can run, then jumps to the next timer; a deadlock fails at
once instead of hanging; unmarked tests keep the ordinary loop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from tests.helpers.virtual_clock import VirtualClockLoop

# a clock that stopped jumping would make these tests wait (for ever, for the deadlock
# test): fail them instead
pytestmark = pytest.mark.timeout(30)


@pytest.mark.virtual_clock
async def test_a_long_sleep_returns_at_once_with_the_clock_moved_by_it() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop)
    start, wall_start = loop.time(), time.monotonic()
    await asyncio.sleep(10)
    assert loop.time() - start == pytest.approx(10)
    assert time.monotonic() - wall_start < 1.0


@pytest.mark.virtual_clock
async def test_timers_fire_in_deadline_order_each_at_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    fired: list[tuple[str, float]] = []

    async def after(delay_s: float, name: str) -> None:
        await asyncio.sleep(delay_s)
        fired.append((name, loop.time() - start))

    await asyncio.gather(after(5, "b"), after(2, "a"), after(30, "c"), after(5.5, "b2"))
    assert [name for name, _ in fired] == ["a", "b", "b2", "c"]
    assert [at for _, at in fired] == pytest.approx([2, 5, 5.5, 30])


@pytest.mark.virtual_clock
async def test_time_stands_still_while_something_is_runnable() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    sleeper = asyncio.ensure_future(asyncio.sleep(1))
    for _ in range(100):
        await asyncio.sleep(0)  # always runnable: no reason to jump to the timer
    assert loop.time() == start and not sleeper.done()
    await sleeper
    assert loop.time() - start == pytest.approx(1)


@pytest.mark.virtual_clock
async def test_a_timeout_fires_at_its_virtual_deadline() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    never: asyncio.Future[None] = loop.create_future()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(never, 30)
    assert loop.time() - start == pytest.approx(30)


@pytest.mark.virtual_clock
async def test_a_socket_made_ready_by_a_timer_is_read_at_that_time() -> None:
    """The clock jumps, and ready file descriptors are still polled on every turn."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    try:
        loop.call_later(5, writer.send, b"hello")
        assert await loop.sock_recv(reader, 5) == b"hello"
        assert loop.time() - start == pytest.approx(5)
    finally:
        reader.close()
        writer.close()


def test_a_deadlock_fails_at_once_instead_of_hanging() -> None:
    loop = VirtualClockLoop()
    try:
        with pytest.raises(AssertionError, match="would wait forever"):
            loop.run_until_complete(loop.create_future())
    finally:
        loop.close()


@pytest.fixture
async def fixture_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    yield asyncio.get_running_loop()


@pytest.mark.virtual_clock
async def test_async_fixtures_of_a_marked_test_share_its_virtual_loop(
    fixture_loop: asyncio.AbstractEventLoop,
) -> None:
    assert fixture_loop is asyncio.get_running_loop()
    assert isinstance(fixture_loop, VirtualClockLoop)


async def test_unmarked_tests_keep_the_ordinary_loop_on_the_wall_clock() -> None:
    loop = asyncio.get_running_loop()
    assert not isinstance(loop, VirtualClockLoop)
    before = time.monotonic()
    assert before <= loop.time() <= time.monotonic()
