"""A virtual clock for asyncio, like trio's MockClock with autojump: the loop's `time()`
moves only when nothing is runnable, and then straight to the next timer. So
`await asyncio.sleep(10)` returns at once in wall time, 10 s later on `loop.time()`, and
timeouts, retries and intervals run in the order their deadlines say, never by luck.

Mark an async test `@pytest.mark.virtual_clock` (tests/conftest.py then runs it and its
async fixtures on a VirtualClockLoop), or drive a VirtualClockLoop yourself.

Only for code that makes progress on the loop alone. A thread, a subprocess or a real
network peer takes wall time the clock does not wait for: the clock would jump past
their work (a timeout firing before a thread could answer), so tests with any of them
stay on the ordinary loop.
"""

from __future__ import annotations

import asyncio
import selectors

__all__ = ["VirtualClockLoop"]


class _AutojumpSelector(selectors.DefaultSelector):
    """Never blocks: where the loop would wait `timeout` seconds, the clock jumps instead.
    Ready file descriptors (the loop's self-pipe, sockets) are still polled each turn."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            # a real loop would block here forever: the test is deadlocked
            raise AssertionError("the loop would wait forever: nothing is scheduled")
        assert self.loop is not None
        self.loop.now += timeout
        return events


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _AutojumpSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0

    def time(self) -> float:
        return self.now
