"""A fault-injecting TCP proxy on every peer link, on loopback.

Each node dials each peer through its own listening port here (`Link`: source → target),
so a fault can cut or slow one direction of one pair. The proxy forwards bytes unchanged and
never terminates TLS: peers name each other by the key in the signed handshake and in
their certificates (node/peer_handshake.py, node/tls.py), not by address, so proxied
addresses work as direct ones.

Faults on a link:
- blocked (a partition): its connections are cut at once, and a new one is accepted and
  then left silent (a black hole: the dialer's handshake or keepalive times out) until the
  link heals, when it is closed so that the dialer reconnects;
- delay and jitter per chunk forwarded (order within a connection is kept: TLS needs it;
  jitter differs across links, so messages of different peers arrive reordered);
- loss: with probability `loss` per chunk the connection is lost (over TCP, lost packets
  are either retransmitted, i.e. delay, or end in a broken connection).

The proxy runs its own asyncio loop on a thread; the harness calls it from plain code.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sparkchain.node.config import join_address, split_address

T = TypeVar("T")
CHUNK_BYTES = 65536


@dataclass
class Link:
    source: str
    target: str
    target_address: str
    listen_address: str = ""
    blocked: bool = False
    delay_ms: int = 0
    jitter_ms: int = 0
    loss: float = 0.0
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    unblocked: asyncio.Event | None = None
    forwarded_bytes: int = 0
    cut_connections: int = 0


class ProxyNet:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []
        self.links: dict[tuple[str, str], Link] = {}

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # ---- set-up ----

    def add_link(self, source: str, target: str, target_address: str) -> str:
        """A listening port that forwards `source`'s connections to `target`; its address."""
        link = Link(source, target, target_address)
        self._call(self._listen(link))
        self.links[(source, target)] = link
        return link.listen_address

    async def _listen(self, link: Link) -> None:
        link.unblocked = asyncio.Event()
        link.unblocked.set()
        server = await asyncio.start_server(
            lambda reader, writer: self._serve(link, reader, writer), "127.0.0.1", 0
        )
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        link.listen_address = join_address("127.0.0.1", port)

    def close(self) -> None:
        if not self._loop.is_running():
            return
        with contextlib.suppress(Exception):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for link in self.links.values():
            for writer in list(link.connections):
                writer.transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    # ---- faults ----

    def block_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Cut both directions between each pair of nodes (a partition's edges)."""
        wanted = {frozenset(pair) for pair in pairs}
        self._call(self._set_blocked(wanted))

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Nodes talk only within their group (every node not named is a group alone)."""
        group_of: dict[str, str] = {}
        for index, group in enumerate(groups):
            for name in group:
                group_of[name] = f"group {index}"
        cut = [
            (link.source, link.target)
            for link in self.links.values()
            if group_of.get(link.source, link.source) != group_of.get(link.target, link.target)
        ]
        self.block_pairs(cut)

    def perturb(self, delay_ms: int, jitter_ms: int, loss: float) -> None:
        """Slow and break every link (the links stay connected between losses)."""
        self._call(self._set_perturbation(delay_ms, jitter_ms, loss))

    def heal(self) -> None:
        self._call(self._set_blocked(set()))
        self._call(self._set_perturbation(0, 0, 0.0))

    async def _set_blocked(self, pairs: set[frozenset[str]]) -> None:
        for link in self.links.values():
            blocked = frozenset((link.source, link.target)) in pairs
            assert link.unblocked is not None
            if blocked and not link.blocked:
                link.blocked = True
                link.unblocked.clear()
                self._cut(link)
            elif not blocked and link.blocked:
                link.blocked = False
                link.unblocked.set()

    async def _set_perturbation(self, delay_ms: int, jitter_ms: int, loss: float) -> None:
        for link in self.links.values():
            link.delay_ms, link.jitter_ms, link.loss = delay_ms, jitter_ms, loss

    def _cut(self, link: Link) -> None:
        for writer in list(link.connections):
            writer.transport.abort()
            link.cut_connections += 1

    # ---- forwarding ----

    async def _serve(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert link.unblocked is not None
        try:
            if link.blocked:
                await self._black_hole(link, reader)
                return
            host, port = split_address(link.target_address)
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except OSError:
                return  # the target is down: the dialer sees a closed connection
            link.connections.update((writer, upstream_writer))
            try:
                await asyncio.gather(
                    self._pump(link, reader, upstream_writer),
                    self._pump(link, upstream_reader, writer),
                )
            finally:
                link.connections.discard(writer)
                link.connections.discard(upstream_writer)
                upstream_writer.transport.abort()
        finally:
            writer.transport.abort()

    async def _black_hole(self, link: Link, reader: asyncio.StreamReader) -> None:
        """Accept, read and drop everything until the link heals."""
        assert link.unblocked is not None
        healed = asyncio.ensure_future(link.unblocked.wait())
        try:
            while not healed.done():
                read = asyncio.ensure_future(reader.read(CHUNK_BYTES))
                done, _ = await asyncio.wait({read, healed}, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    read.cancel()
                elif not read.result():
                    return  # the dialer gave up
        finally:
            healed.cancel()

    async def _pump(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                if link.blocked:
                    break
                if link.loss and self._rng.random() < link.loss:
                    link.cut_connections += 1
                    break
                delay_ms = link.delay_ms + self._rng.uniform(0, link.jitter_ms)
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                # counted before it is sent: whoever receives it may read the count at once
                link.forwarded_bytes += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
