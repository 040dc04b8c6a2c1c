"""Backpressure on a SubmitStream whose txs the mempool keeps refusing for room or rate
(issue 10, attack 2b: one signer streaming 20,000 small txs).

The mempool refuses such txs cheaply, before their signatures (node/mempool.py), but each
request still costs the node its gRPC read, decode and answer, about as much as the
refusal, on the event loop that also runs consensus. So a stream whose requests are refused
for room (MEMPOOL_FULL, LIMIT_EXCEEDED: the signer is past its share or its rate) is read
more slowly: after each batch refused whole, the pause before the stream's next read
doubles (SUBMIT_STREAM_PACE_FIRST_S up to SUBMIT_STREAM_PACE_MAX_S, identifiers/limits.py);
each batch with an admitted tx halves it. The client's sends then wait on HTTP/2 flow
control, and a well-behaved client that only brushes its rate sees a pause of a few
milliseconds. Other refusals (a bad signature, a duplicate) are answered as fast as before:
they say nothing about room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sparkchain.identifiers.errors import ErrorCode
from sparkchain.identifiers.limits import SUBMIT_STREAM_PACE_FIRST_S, SUBMIT_STREAM_PACE_MAX_S

_FOR_ROOM = frozenset((ErrorCode.MEMPOOL_FULL, ErrorCode.LIMIT_EXCEEDED))


class RefusalPacer:
    """The pause before a stream's next read, from its batches' answers."""

    def __init__(self) -> None:
        self.pause_s = 0.0

    def batch_answered(self, errors: Iterable[ErrorCode | None]) -> None:
        """One batch's answers: None for an admitted tx, else the refusal's code."""
        admitted = refused_for_room = 0
        for code in errors:
            if code is None:
                admitted += 1
            elif code in _FOR_ROOM:
                refused_for_room += 1
        if admitted:
            halved = self.pause_s / 2
            self.pause_s = halved if halved >= SUBMIT_STREAM_PACE_FIRST_S else 0.0
        elif refused_for_room:
            doubled = max(SUBMIT_STREAM_PACE_FIRST_S, self.pause_s * 2)
            self.pause_s = min(SUBMIT_STREAM_PACE_MAX_S, doubled)

    async def before_read(self) -> None:
        if self.pause_s:
            await asyncio.sleep(self.pause_s)
