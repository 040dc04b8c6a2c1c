"""Commit notifications inside one node process (DESIGN §7, §11).

The runtime publishes each committed block once; the API waits on it for
Submit(wait_for_commit) and streams its change events to Watch subscribers. Everything runs
on the node's event loop: no locks, and a waiter registered right after admission cannot
miss its commit (the bus also remembers the most recent commits, for late waiters).

Watch costs the commit nothing per subscriber: `publish_block` appends the block's changes
once to one shared log (bounded by WATCH_BACKLOG_EVENTS and WATCH_BACKLOG_BYTES, the
newest block always whole)
and completes one future; each Subscription holds only a cursor into the log and does its
own prefix filtering in its own task. A subscriber that never reads pins no changes: the
log forgets them, and when it reads again it finds its cursor gone and is closed, to
resume with from_height; one that stays away (a stream stuck writing to a client that does
not read) is closed by a sweep, off the commit path, at most WATCH_SWEEP_INTERVAL_MS after
it fell behind, and its owner told (`on_fell_behind`). Streams are capped in total and
per client (MAX_WATCH_STREAMS, MAX_WATCH_STREAMS_PER_CLIENT): over a cap `subscribe`
refuses with LIMIT_EXCEEDED.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import NamedTuple, TypeVar

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import ascii_upper
from sparkchain.identifiers.limits import (
    MAX_WATCH_STREAMS,
    MAX_WATCH_STREAMS_PER_CLIENT,
    RECENT_COMMITS_REMEMBERED,
    WATCH_BACKLOG_BYTES,
    WATCH_BACKLOG_EVENTS,
    WATCH_SWEEP_INTERVAL_MS,
)
from sparkchain.proto import api_pb2

_V = TypeVar("_V")


def prefix_matches(watched_key: str, event: api_pb2.ChangeEvent) -> bool:
    """Is the event's prefix the watched prefix or under it? ("" watches everything)."""
    return key_under(watched_key, ascii_upper(event.prefix))


def key_under(watched_key: str, prefix_key: str) -> bool:
    """Is `prefix_key` the watched prefix key or under it? ("" watches everything)."""
    if not watched_key:
        return True
    return prefix_key == watched_key or prefix_key.startswith(watched_key + ".")


class _LoggedBlock(NamedTuple):
    """What the log keeps once per block, so that a reader skips a block of changes none of
    which it watches in one step, not one prefix check per change."""

    end_seq: int  # the sequence number after its last change
    prefix_keys: frozenset[str]  # the prefixes its changes are under, as keys


class Subscription:
    """An async iterator of ChangeEvents under one prefix, from the bus's shared change log.
    Close it (or use `with`)."""

    def __init__(
        self,
        bus: CommitBus,
        prefix_key: str,
        client: str,
        cursor: int,
        on_fell_behind: Callable[[SparkError], object] | None,
    ) -> None:
        self._bus = bus
        self.prefix_key = prefix_key
        self.client = client
        self._cursor = cursor  # the sequence number of the next change this reader takes
        self._watched_block_end = cursor  # changes before this are in a block it watches
        self._on_fell_behind = on_fell_behind
        self._closing: asyncio.Future[None] | None = None  # wakes a waiting reader on close
        self._fell_behind = False
        self.closed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> api_pb2.ChangeEvent:
        bus = self._bus
        while not self.closed or self._fell_behind:
            if self._fell_behind or self._cursor < bus._log_first_seq:
                if not self._fell_behind:  # else counted when the sweep closed it
                    bus.on_limit_hit("WATCH_BACKLOG")
                self._fell_behind = False  # said once; the next call ends the iteration
                self.close()
                raise bus._fell_behind_error()
            if self._cursor < bus._next_seq:
                event, block, _ = bus._log[self._cursor - bus._log_first_seq]
                if self._cursor >= self._watched_block_end:
                    if not any(key_under(self.prefix_key, key) for key in block.prefix_keys):
                        self._cursor = block.end_seq
                        continue
                    self._watched_block_end = block.end_seq
                self._cursor += 1
                if prefix_matches(self.prefix_key, event):
                    return event
                continue
            if self._closing is None:
                self._closing = asyncio.get_running_loop().create_future()
            # asyncio.wait never cancels the shared future, whoever cancels this reader
            await asyncio.wait(
                (bus._next_publish(), self._closing), return_when=asyncio.FIRST_COMPLETED
            )
        raise StopAsyncIteration

    def _fall_behind(self) -> None:
        """Its next change has left the log while its reader was away (a stream stuck
        writing to a client that does not read): close it now, not when it reads again."""
        self._fell_behind = True
        self._bus.on_limit_hit("WATCH_BACKLOG")
        self.close()
        if self._on_fell_behind is not None:
            self._on_fell_behind(self._bus._fell_behind_error())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._unsubscribe(self)
            if self._closing is not None and not self._closing.done():
                self._closing.set_result(None)

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
    def __init__(
        self,
        remembered: int = RECENT_COMMITS_REMEMBERED,
        *,
        backlog_events: int = WATCH_BACKLOG_EVENTS,
        backlog_bytes: int = WATCH_BACKLOG_BYTES,
        max_streams: int = MAX_WATCH_STREAMS,
        max_streams_per_client: int = MAX_WATCH_STREAMS_PER_CLIENT,
    ) -> None:
        self._remembered = remembered
        self._committed: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        self._rejected: OrderedDict[bytes, SparkError] = OrderedDict()
        self._waiters: dict[bytes, list[asyncio.Future[tuple[int, int]]]] = {}
        # the shared change log: change number `seq`, its block and its size in bytes are
        # _log[seq - _log_first_seq]
        self._backlog_events = backlog_events
        self._backlog_bytes = backlog_bytes
        self._log: deque[tuple[api_pb2.ChangeEvent, _LoggedBlock, int]] = deque()
        self._log_bytes = 0
        self._log_first_seq = 0
        self._next_seq = 0
        self._published: asyncio.Future[None] | None = None  # done at the next publish
        self._max_streams = max_streams
        self._max_streams_per_client = max_streams_per_client
        self._subscriptions: set[Subscription] = set()
        self._streams_by_client: dict[str, int] = {}
        self._sweep: asyncio.TimerHandle | None = None  # closes fallen-behind streams, later
        # called with the bound's name each time one refuses or closes a stream (node/metrics.py)
        self.on_limit_hit: Callable[[str], None] = lambda _limit: None

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
        # O(changes) and O(1) in subscribers: readers take the changes in their own tasks
        if not self._subscriptions:  # nobody reads: hold no changes (the committer sends none)
            self._log.clear()
            self._log_bytes = 0
            self._log_first_seq = self._next_seq
        newest_block_seq = self._next_seq
        block_changes = list(changes)
        block = _LoggedBlock(
            newest_block_seq + len(block_changes),
            frozenset(ascii_upper(event.prefix) for event in block_changes),
        )
        for event in block_changes:
            size = event.ByteSize()
            self._log.append((event, block, size))
            self._log_bytes += size
        self._next_seq = self._log_first_seq + len(self._log)
        trimmed = False
        while (
            len(self._log) > self._backlog_events or self._log_bytes > self._backlog_bytes
        ) and self._log_first_seq < newest_block_seq:
            self._log_bytes -= self._log.popleft()[2]
            self._log_first_seq += 1
            trimmed = True
        if trimmed and self._subscriptions and self._sweep is None:
            self._schedule_sweep()
        published, self._published = self._published, None
        if published is not None and not published.done():
            published.set_result(None)

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

    def subscribe(
        self,
        prefix: str = "",
        client: str = "",
        on_fell_behind: Callable[[SparkError], object] | None = None,
    ) -> Subscription:
        """Changes under `prefix` (its key or display form; "" for all) from now on, for
        `client` (who asks, for the per-client cap; "" in-process). SparkError
        LIMIT_EXCEEDED when the node or this client has as many streams as allowed.

        `on_fell_behind(error)` is called when the subscription is closed because its
        reader, away from it, fell behind the log (the API ends the stream's call with
        `error`, the one the reader would get)."""
        if len(self._subscriptions) >= self._max_streams:
            self.on_limit_hit("MAX_WATCH_STREAMS")
            raise SparkError(
                ErrorCode.LIMIT_EXCEEDED,
                f"MAX_WATCH_STREAMS ({self._max_streams}): this node has as many Watch streams "
                "open as it allows; try again later or use another node",
            )
        held = self._streams_by_client.get(client, 0)
        if held >= self._max_streams_per_client:
            self.on_limit_hit("MAX_WATCH_STREAMS_PER_CLIENT")
            raise SparkError(
                ErrorCode.LIMIT_EXCEEDED,
                f"MAX_WATCH_STREAMS_PER_CLIENT ({self._max_streams_per_client}): client "
                f"{client or '(in-process)'} has as many Watch streams open as it may; close "
                "one, or watch a shorter prefix with one stream",
            )
        subscription = Subscription(
            self, ascii_upper(prefix), client, self._next_seq, on_fell_behind
        )
        self._subscriptions.add(subscription)
        self._streams_by_client[client] = held + 1
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            held = self._streams_by_client[subscription.client] - 1
            if held:
                self._streams_by_client[subscription.client] = held
            else:
                del self._streams_by_client[subscription.client]

    def _schedule_sweep(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop (a test): readers find out themselves
            return
        self._sweep = loop.call_later(WATCH_SWEEP_INTERVAL_MS / 1000, self._close_fallen_behind)

    def _close_fallen_behind(self) -> None:
        """Off the commit path, at most once per WATCH_SWEEP_INTERVAL_MS: a stream whose
        next change has left the log is closed (a reader at the head is never behind)."""
        self._sweep = None
        for subscription in [s for s in self._subscriptions if s._cursor < self._log_first_seq]:
            subscription._fall_behind()

    def _fell_behind_error(self) -> SparkError:
        return SparkError(
            ErrorCode.LIMIT_EXCEEDED,
            f"WATCH_BACKLOG_EVENTS ({self._backlog_events}) or WATCH_BACKLOG_BYTES "
            f"({self._backlog_bytes}): this watch stream fell further "
            "behind the chain than the node keeps changes for and was closed; reconnect with "
            "from_height set to the last height you saw + 1",
        )

    def _next_publish(self) -> asyncio.Future[None]:
        """One future for every reader waiting at the head, done at the next publish."""
        if self._published is None:
            self._published = asyncio.get_running_loop().create_future()
        return self._published

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    @property
    def logged_changes(self) -> int:
        """Changes the shared log holds for readers (all subscribers together)."""
        return len(self._log)


def _copy(error: SparkError) -> SparkError:
    """A fresh exception per waiter (one raised exception object must not be shared)."""
    return SparkError(error.code, error.message, item_index=error.item_index)
