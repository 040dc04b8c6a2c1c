"""The explorer's live feed (node/explorer_feed.py) in-process: a commit only wakes the
subscribers, so a reader that never takes its data cannot hold a commit or the others."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from sparkchain.identifiers.limits import SSE_BACKLOG_BLOCKS
from sparkchain.node.explorer_feed import BlockFeed, sse_block_event

pytestmark = pytest.mark.timeout(60)


def committed(height: int, txs: int = 1) -> Any:
    """What the commit hook reads of a PendingBlock."""
    return SimpleNamespace(
        height=height,
        block_hash=bytes([height]) * 32,
        header=SimpleNamespace(time_ms=1_764_000_000_000 + height),
        tx_ids=(b"t",) * txs,
    )


async def test_a_stuck_reader_holds_neither_the_commit_nor_the_other_readers() -> None:
    feed = BlockFeed(height=0, on_limit_hit=lambda limit: None)
    stuck_forever = asyncio.Event()  # never set: this reader never takes its data
    healthy: list[bytes] = []
    heights_seen = asyncio.Queue[int]()

    async def stuck(data: bytes) -> bool:
        await stuck_forever.wait()
        return True

    async def reader(data: bytes) -> bool:
        healthy.append(data)
        if data.startswith(b"id: "):
            heights_seen.put_nowait(int(data.split(b"\n", 1)[0][4:]))
        return True

    stuck_task = asyncio.create_task(feed.subscribe(stuck, lambda: False))
    reader_task = asyncio.create_task(feed.subscribe(reader, lambda: False))
    await asyncio.sleep(0)  # both subscribed (the stuck one waits in its hello)
    for height in (1, 2, 3):
        feed.block_committed(committed(height))  # synchronous: it returns at once
    assert [await heights_seen.get() for _ in range(3)] == [1, 2, 3]
    assert healthy[0].startswith(b"event: hello")
    assert healthy[1] == sse_block_event(feed._since(0)[0])
    assert not stuck_task.done()
    feed.close()
    await reader_task
    stuck_task.cancel()


async def test_a_reader_that_fell_behind_gets_the_kept_backlog_only() -> None:
    feed = BlockFeed(height=0, on_limit_hit=lambda limit: None)
    gate = asyncio.Event()
    got: list[int] = []

    async def slow(data: bytes) -> bool:
        await gate.wait()
        if data.startswith(b"id: "):
            got.append(int(data.split(b"\n", 1)[0][4:]))
        return True

    task = asyncio.create_task(feed.subscribe(slow, lambda: False))
    await asyncio.sleep(0)
    total = SSE_BACKLOG_BLOCKS + 10
    for height in range(1, total + 1):
        feed.block_committed(committed(height))
    gate.set()
    while not got or got[-1] != total:
        await asyncio.sleep(0)
    assert got == list(range(total - SSE_BACKLOG_BLOCKS + 1, total + 1))
    feed.close()
    await task


async def test_a_reader_that_left_ends_its_subscription() -> None:
    feed = BlockFeed(height=5, on_limit_hit=lambda limit: None)

    async def send(data: bytes) -> bool:
        return True

    await asyncio.wait_for(feed.subscribe(send, lambda: True), timeout=30)
