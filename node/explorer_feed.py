"""The explorer's live feed (GET /api/events): one server-sent event per committed block.

No reader can delay a commit: the commit hook (`BlockFeed.block_committed`, which the
runtime hands to the committer) only appends the block's summary to a short in-memory
backlog and wakes the subscribers through an asyncio.Event; it never writes to a socket.
Each subscriber sends from its own request task, at its own pace, what it has not sent
yet; one that fell further behind than the backlog skips to what is kept (its browser
re-reads the chain anyway). A write that does not finish within SSE_WRITE_TIMEOUT_S (a
reader that stopped reading) ends that subscriber's stream. At most MAX_SSE_SUBSCRIBERS
streams are open at once: beyond, 503 naming that limit.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sparkchain.identifiers.limits import (
    MAX_SSE_SUBSCRIBERS,
    SSE_BACKLOG_BLOCKS,
    SSE_IDLE_CHECK_INTERVAL_S,
    SSE_KEEPALIVE_INTERVAL_S,
    SSE_WRITE_TIMEOUT_S,
)
from sparkchain.node.ledger import PendingBlock

EVENT_STREAM_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class BlockSummary:
    height: int
    block_hash: bytes
    time_ms: int
    tx_count: int

    def json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "hash": self.block_hash.hex(),
            "time_ms": self.time_ms,
            "time": iso_time(self.time_ms),
            "tx_count": self.tx_count,
        }


def iso_time(time_ms: int) -> str:
    """`2026-12-06T23:52:32.123Z` (UTC, milliseconds)."""
    when = datetime.fromtimestamp(time_ms / 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def sse_block_event(summary: BlockSummary) -> bytes:
    """One `block` event of the stream, its id the height (EventSource's Last-Event-ID)."""
    data = json.dumps(summary.json(), separators=(",", ":"))
    return f"id: {summary.height}\nevent: block\ndata: {data}\n\n".encode()


class BlockFeed:
    """Committed blocks for the /api/events subscribers of one gateway."""

    def __init__(self, height: int, on_limit_hit: Callable[[str], None]) -> None:
        self._on_limit_hit = on_limit_hit  # counted in /metrics (spark_limit_hits_total)
        self._backlog: deque[BlockSummary] = deque(maxlen=SSE_BACKLOG_BLOCKS)
        self._height = height  # the last committed height known to the feed
        self._changed = asyncio.Event()
        self._subscribers = 0
        self._closing = False

    @property
    def subscribers(self) -> int:
        return self._subscribers

    def block_committed(self, pending: PendingBlock) -> None:
        """The commit hook: O(1), no I/O; wakes every subscriber."""
        self._backlog.append(
            BlockSummary(
                pending.height, pending.block_hash, pending.header.time_ms, len(pending.tx_ids)
            )
        )
        self._height = pending.height
        self._wake()

    def close(self) -> None:
        """End every stream (the gateway is stopping)."""
        self._closing = True
        self._wake()

    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    def _since(self, height: int) -> list[BlockSummary]:
        return [summary for summary in self._backlog if summary.height > height]

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """GET /api/events: the stream of one subscriber, from the next committed block."""
        if self._subscribers >= MAX_SSE_SUBSCRIBERS:
            self._on_limit_hit("MAX_SSE_SUBSCRIBERS")
            message = (
                f"too many event streams open (MAX_SSE_SUBSCRIBERS = {MAX_SSE_SUBSCRIBERS}); "
                "try again later"
            )
            body = json.dumps({"message": message})
            return web.Response(status=503, text=body, content_type="application/json")
        self._subscribers += 1
        try:
            return await self._serve(request)
        finally:
            self._subscribers -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": EVENT_STREAM_TYPE,
                "Cache-Control": "no-cache",
                "Access-Control-Allow-Origin": "*",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)

        def reader_gone() -> bool:
            return request.transport is None or request.transport.is_closing()

        await self.subscribe(lambda data: _send(response, data), reader_gone)
        return response

    async def subscribe(
        self, send: Callable[[bytes], Awaitable[bool]], reader_gone: Callable[[], bool]
    ) -> None:
        """One subscriber's loop: a `hello` with the current height, then every block
        committed after it, through `send` (False: stop), until the feed closes."""
        sent = self._height
        # the height the stream starts from, so a page knows where it stands
        hello = json.dumps({"height": sent})
        if not await send(f"event: hello\ndata: {hello}\n\n".encode()):
            return
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while not self._closing:
            # blocks committed while this reader was sending are sent before it waits
            unsent = self._since(sent)
            for summary in unsent:
                if not await send(sse_block_event(summary)):
                    return
                sent = summary.height
            if unsent:
                quiet_since = loop.time()
                continue
            try:
                await asyncio.wait_for(self._changed.wait(), SSE_IDLE_CHECK_INTERVAL_S)
            except TimeoutError:
                if reader_gone():
                    return  # give its slot back now, not at the next write
                if loop.time() - quiet_since >= SSE_KEEPALIVE_INTERVAL_S:
                    if not await send(b": keep-alive\n\n"):
                        return
                    quiet_since = loop.time()


async def _send(response: web.StreamResponse, data: bytes) -> bool:
    """Whether `data` was written; False when the reader is gone or stuck."""
    try:
        await asyncio.wait_for(response.write(data), SSE_WRITE_TIMEOUT_S)
    except (TimeoutError, ConnectionError, RuntimeError):
        return False
    return True
