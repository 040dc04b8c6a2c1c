"""Background threads that give the GIL back often, so they cannot stall the event loop.

A Python thread doing CPU work (writing a state snapshot: a tree walk and a loop over
every record) holds the GIL until the interpreter asks it to let go, 5 ms after another
thread started waiting (sys.getswitchinterval). The event loop lets go of the GIL at every
socket read, write and poll, so while such a thread runs, each of those waits up to 5 ms to
get it back: a consensus step that does a few dozen of them takes hundreds of
milliseconds. And the validators all snapshot the same height, on shared cores.

`ThreadPacer.pace()` is called once per unit of work (an entry read, a node visited: a
snapshot reads through node/snapshots.py's `PacedView`): after
every BACKGROUND_WORK_S (1 ms) of running it sleeps BACKGROUND_PAUSE_S (2 ms), which gives
the GIL back at once and leaves the CPU to the event loop for that long. The work takes up
to three times as long, but never holds the GIL for more than about 1 ms at a stretch (a
single C call, such as a sort, cannot be cut: callers keep those short).

Measured (4 validators + observer on this 2-core machine, a snapshot every 100 blocks
after a few 3 MB RegisterBatches, 90 s of the attack bench's workload): the three blocks
after a snapshot height took 520-560 ms more than three typical blocks without pacing,
~160-215 ms more with it; the workload's p99 commit latency 677 ms (max 1017) without,
280-410 ms with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sparkchain.identifiers.limits import BACKGROUND_PAUSE_S, BACKGROUND_WORK_S

T = TypeVar("T")


class ThreadPacer:
    """Pauses a background thread every `work_s` of running, for `pause_s`."""

    def __init__(
        self,
        work_s: float = BACKGROUND_WORK_S,
        pause_s: float = BACKGROUND_PAUSE_S,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if work_s <= 0 or pause_s <= 0:
            raise ValueError(f"work_s and pause_s must be positive, not {work_s}, {pause_s}")
        self._work_s = work_s
        self._pause_s = pause_s
        self._clock = clock
        self._sleep = sleep
        self._since = clock()
        self.pauses = 0

    def pace(self) -> None:
        """Call once per unit of work; sleeps when the thread has run long enough."""
        now = self._clock()
        if now - self._since >= self._work_s:
            self._sleep(self._pause_s)
            self.pauses += 1
            self._since = self._clock()

    def paced(self, items: Iterator[T]) -> Iterator[T]:
        """`items`, with `pace()` before each."""
        pace = self.pace
        for item in items:
            pace()
            yield item
