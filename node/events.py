"""Commit notifications inside one node process (DESIGN §7).

The runtime publishes each committed block once; the API waits on it for
Submit(wait_for_commit) and streams its change events to Watch subscribers. Everything runs
on the node's event loop: no locks, and a waiter registered right after admission cannot
miss its commit (the bus also remembers the most recent commits, for late waiters).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TypeVar

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import ascii_upper
from sparkchain.identifiers.limits import RECENT_COMMITS_REMEMBERED, WATCH_QUEUE_EVENTS
from sparkchain.proto import api_pb2

_V = TypeVar("_V")


def prefix_matches(watched_key: str, event: api_pb2.ChangeEvent) -> bool:
    """Is the event's prefix the watched prefix or under it? ("" watches everything)."""
    if not watched_key:
        return True
    event_key = ascii_upper(event.prefix)
    return event_key == watched_key or event_key.startswith(watched_key + ".")


class Subscription:
    """An async iterator of ChangeEvents under one prefix. Close it (or use `with`)."""

    def __init__(self, bus: CommitBus, prefix_key: str, max_queued: int) -> None:
        self._bus = bus
        self.prefix_key = prefix_key
        self._queue: asyncio.Queue[api_pb2.ChangeEvent | None] = asyncio.Queue()
        self._max_queued = max_queued
        self._overflowed = False
        self.closed = False

    def _offer(self, event: api_pb2.ChangeEvent) -> None:
        if self.closed or self._overflowed:
            return
        if self._queue.qsize() >= self._max_queued:
            # a reader this slow would hold memory without bound: end it, it can resume
            self._overflowed = True
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> api_pb2.ChangeEvent:
        if self.closed:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            self.close()
            if self._overflowed:
                raise SparkError(
                    ErrorCode.UNAVAILABLE,
                    f"watch stream fell more than {self._max_queued} changes behind and was "
                    "closed; reconnect with from_height set to the last height you saw + 1",
                )
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._subscriptions.discard(self)
            self._queue.put_nowait(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def timeout_error(tx_id: bytes, timeout_s: float) -> SparkError:
    return SparkError(
        ErrorCode.TIMEOUT,
        f"tx {tx_id.hex()} was admitted but not committed within {timeout_s:g} s; "
        "it may still commit (look it up with GetTx)",
    )


class CommitBus:
    def __init__(self, remembered: int = RECENT_COMMITS_REMEMBERED) -> None:
        self._remembered = remembered
        self._committed: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        self._rejected: OrderedDict[bytes, SparkError] = OrderedDict()
        self._waiters: dict[bytes, list[asyncio.Future[tuple[int, int]]]] = {}
        self._subscriptions: set[Subscription] = set()

    # ---- publishing (the runtime, after ledger.commit_block) ----

    def publish_block(
        self,
        height: int,
        tx_ids: Sequence[bytes],
        changes: Iterable[api_pb2.ChangeEvent],
    ) -> None:
        """Block `height` committed with these txs (in block order) and these changes."""
        for index, the_id in enumerate(tx_ids):
            where = (height, index)
            self._remember(self._committed, the_id, where)
            for waiter in self._waiters.pop(the_id, ()):
                if not waiter.done():
                    waiter.set_result(where)
        if self._subscriptions:
            for event in changes:
                for subscription in list(self._subscriptions):
                    if prefix_matches(subscription.prefix_key, event):
                        subscription._offer(event)

    def publish_rejected(self, tx_id: bytes, error: SparkError) -> None:
        """An admitted tx will never commit (a proposer rejected it, or it expired)."""
        self._remember(self._rejected, tx_id, error)
        for waiter in self._waiters.pop(tx_id, ()):
            if not waiter.done():
                waiter.set_exception(_copy(error))

    def _remember(self, memory: OrderedDict[bytes, _V], key: bytes, value: _V) -> None:
        memory[key] = value
        if len(memory) > self._remembered:
            memory.popitem(last=False)

    # ---- waiting (the API) ----

    def committed(self, tx_id: bytes) -> tuple[int, int] | None:
        return self._committed.get(tx_id)

    async def wait_for_tx(self, tx_id: bytes, timeout_s: float) -> tuple[int, int]:
        """(height, index in block) once `tx_id` commits; SparkError(TIMEOUT) after
        `timeout_s`, or the rejection's error if the tx is dropped without committing."""
        waiter = self.watch_tx(tx_id)
        if waiter.done():
            return waiter.result()
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            raise timeout_error(tx_id, timeout_s) from None
        finally:
            self.forget(tx_id, waiter)

    def watch_tx(self, tx_id: bytes) -> asyncio.Future[tuple[int, int]]:
        """A future of `tx_id`'s (height, index in block), or of the SparkError that
        dropped it; done at once when the outcome is remembered. It has no timeout: a
        caller that stops waiting calls `forget`. For callers that wait for many txs at
        once (SubmitStream): no task or timer per tx."""
        waiter: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        where = self._committed.get(tx_id)
        if where is not None:
            waiter.set_result(where)
            return waiter
        error = self._rejected.get(tx_id)
        if error is not None:
            waiter.set_exception(_copy(error))
            return waiter
        self._waiters.setdefault(tx_id, []).append(waiter)
        return waiter

    def forget(self, tx_id: bytes, waiter: asyncio.Future[tuple[int, int]]) -> None:
        """Stop waiting: drop `waiter` (from `watch_tx`) and cancel it if not done."""
        waiters = self._waiters.get(tx_id)
        if waiters is not None:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                del self._waiters[tx_id]
        waiter.cancel()

    def pending_waiters(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # ---- watching ----

    def subscribe(self, prefix: str = "", max_queued: int = WATCH_QUEUE_EVENTS) -> Subscription:
        """Changes under `prefix` (its key or display form; "" for all) from now on."""
        subscription = Subscription(self, ascii_upper(prefix), max_queued)
        self._subscriptions.add(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)


def _copy(error: SparkError) -> SparkError:
    """A fresh exception per waiter (one raised exception object must not be shared)."""
    return SparkError(error.code, error.message, item_index=error.item_index)
