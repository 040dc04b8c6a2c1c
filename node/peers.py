"""Peer links: one long-lived gRPC stream per pair of nodes (DESIGN §7).

Each node dials every configured peer address (reconnecting with exponential backoff and
jitter) and accepts inbound streams, over mutual TLS only (node/tls.py: both ends show a
certificate of the network CA). After the handshake (node/peer_handshake.py) a stream
is a `PeerLink` bound to the remote key; an acceptor also checks that this key is the one
in the dialer's TLS certificate. When both nodes dialed each other, both keep the
stream dialed by the smaller key, so a pair ends with one stream.

Cost model (DESIGN §7): a gRPC message costs as much as several signature checks, so txs
travel in `TxBatch`es flushed on a short timer, consensus messages are per block, and
nothing here sends one message per tx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    GOSSIP_BATCH_INTERVAL_MS,
    MAX_GOSSIP_BATCH_BYTES,
    MAX_GOSSIP_BATCH_TXS,
    MAX_OBSERVER_LINKS,
    MAX_PEER_MESSAGE_BYTES,
    PEER_HANDSHAKE_TIMEOUT_MS,
    PEER_KEEPALIVE_INTERVAL_MS,
    PEER_KEEPALIVE_TIMEOUT_MS,
    PEER_OUTBOUND_QUEUE_MESSAGES,
    PEER_RECONNECT_MAX_MS,
    PEER_RECONNECT_MIN_MS,
)
from sparkchain.node.logs import RateLimitedLog
from sparkchain.node.peer_handshake import (
    LocalPeer,
    answer,
    check_admissible,
    check_answer,
    hello,
    new_nonce,
)
from sparkchain.node.tls import (
    CLIENT_CERT_PROPERTY,
    PEER_SERVER_NAME,
    PeerTls,
    node_key_in_certificate,
)
from sparkchain.proto import peer_pb2, peer_pb2_grpc
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.peers")

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_PEER_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_PEER_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", PEER_KEEPALIVE_INTERVAL_MS),
    ("grpc.keepalive_timeout_ms", PEER_KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # our dial loop owns the backoff; a short channel backoff lets it see a restarted peer
    ("grpc.initial_reconnect_backoff_ms", PEER_RECONNECT_MIN_MS),
    ("grpc.max_reconnect_backoff_ms", PEER_RECONNECT_MAX_MS),
    # peers are dialed by address; every node certificate names PEER_SERVER_NAME
    ("grpc.ssl_target_name_override", PEER_SERVER_NAME),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    # gRPC sets SO_REUSEPORT by default: a second node on this port would share it silently
    ("grpc.so_reuseport", 0),
    ("grpc.max_send_message_length", MAX_PEER_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_PEER_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", PEER_KEEPALIVE_INTERVAL_MS // 2),
    ("grpc.http2.max_pings_without_data", 0),
]

# the next message of a stream, or grpc.aio.EOF once it ended (typeshed types that as object)
ReadFn = Callable[[], Awaitable[object]]
WriteFn = Callable[[peer_pb2.PeerMessage], Awaitable[None]]


class SnapshotSource(Protocol):
    """What the Peer service serves snapshots from (node/snapshots.py SnapshotStore)."""

    def listed(self) -> peer_pb2.ListSnapshotsResponse: ...

    def chunk(self, height: int, index: int) -> bytes: ...


BlockSource = Callable[[peer_pb2.GetBlocksRequest], AsyncIterator[peer_pb2.CommittedBlock]]


def _ignore(*_args: object) -> None:
    return None


@dataclass
class PeerEvents:
    """What the runtime wants to hear from the network (all called on the event loop)."""

    on_proposal: Callable[[PeerLink, pb.Proposal], None] = _ignore
    on_vote: Callable[[PeerLink, pb.Vote], None] = _ignore
    on_txs: Callable[[PeerLink, list[pb.SignedTx]], None] = _ignore
    on_height: Callable[[PeerLink, int], None] = _ignore
    on_link_up: Callable[[PeerLink], None] = _ignore


class PeerLink:
    """An authenticated stream to one peer, with a bounded outbound queue."""

    def __init__(
        self,
        remote: peer_pb2.Handshake,
        *,
        outbound: bool,
        address: str,
        local_key: bytes,
        queue_limit: int = PEER_OUTBOUND_QUEUE_MESSAGES,
        totals: Counter[str] | None = None,
        on_limit_hit: Callable[[str], None] = lambda _limit: None,
    ) -> None:
        self.key = bytes(remote.public_key)
        self.observer = remote.observer
        self.outbound = outbound
        self.address = address
        self.dialer_key = local_key if outbound else self.key
        self.height = remote.height
        self.closed = asyncio.Event()
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self._totals = totals if totals is not None else Counter()  # the network's, all links
        self.dropped = 0
        self._on_limit_hit = on_limit_hit  # a full queue, counted (node/metrics.py)
        self._queue: deque[peer_pb2.PeerMessage] = deque()
        self._queue_limit = queue_limit
        self._ready = asyncio.Event()

    def __repr__(self) -> str:
        way = "out" if self.outbound else "in"
        return f"PeerLink({self.key.hex()[:12]} {way} {self.address})"

    def send(self, message: peer_pb2.PeerMessage) -> None:
        if self.closed.is_set():
            return
        if len(self._queue) >= self._queue_limit:
            self._on_limit_hit("PEER_OUTBOUND_QUEUE_MESSAGES")
            if message.WhichOneof("kind") == "txs":
                self.dropped += 1  # tx gossip is best effort: the sender's mempool keeps it
                return
            # a peer this far behind gets a fresh link; the reconnect re-sends our latest votes
            log.warning("peer_queue_full", extra={"peer": self.key.hex()[:12]})
            self.close()
            return
        self._queue.append(message)
        self._ready.set()

    def close(self) -> None:
        self.closed.set()
        self._ready.set()

    async def pump(self, write: WriteFn) -> None:
        while not self.closed.is_set():
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            message = self._queue.popleft()
            await write(message)
            kind = message.WhichOneof("kind") or "?"
            self.sent[kind] += 1
            self._totals[kind] += 1


@dataclass
class _Dialer:
    address: str
    channel: grpc.aio.Channel
    stub: peer_pb2_grpc.PeerAsyncStub
    remote_key: bytes | None = None
    last_error: str = ""
    attempts: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SyncPeer:
    """A peer we can fetch blocks from (through our own channel to its address)."""

    key: bytes
    address: str
    height: int
    stub: peer_pb2_grpc.PeerAsyncStub


class PeerNetwork:
    def __init__(
        self,
        local: LocalPeer,
        peer_addresses: Sequence[str],
        events: PeerEvents,
        height: Callable[[], int],
        tls: PeerTls,
        *,
        block_source: BlockSource | None = None,
        snapshot_source: SnapshotSource | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.local = local
        self.tls = tls
        self.events = events
        self._height = height
        self._block_source = block_source
        self._snapshot_source = snapshot_source
        self._rng = rng or random.Random()
        self._links: dict[bytes, PeerLink] = {}
        self._dialers = [self._new_dialer(address) for address in peer_addresses]
        self._pending_txs: list[pb.SignedTx] = []
        self._pending_bytes = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._closing = False
        self.stats: Counter[str] = Counter()  # broadcasts and gossip, counted once each
        # called with the bound's name each time one refuses a link (node/metrics.py)
        self.on_limit_hit: Callable[[str], None] = lambda _limit: None
        self._refusals = RateLimitedLog(log)  # lines about peers' bad messages, per peer
        self.messages_sent: Counter[str] = Counter()  # messages written, over every link

    def set_validators(self, validators: frozenset[bytes]) -> None:
        """The keys admitted as validators from now on (the chain's sets change, DESIGN
        §12). A validator link whose key left the set is closed: the removed node may
        come back only as an observer that the operator lists in `[p2p] observers`."""
        if validators == self.local.validators:
            return
        self.local = dataclasses.replace(self.local, validators=validators)
        for link in self.links():
            if not link.observer and link.key not in validators:
                log.info("peer_removed_from_set", extra={"peer": link.key.hex()[:12]})
                link.close()

    # ---- lifecycle ----

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Add the Peer service; bind the server's port with `server_credentials()`."""
        peer_pb2_grpc.add_PeerServicer_to_server(_PeerServicer(self), server)

    def server_credentials(self) -> grpc.ServerCredentials:
        return self.tls.server_credentials()

    def start(self) -> None:
        for dialer in self._dialers:
            dialer.task = asyncio.create_task(self._dial_forever(dialer))

    async def close(self) -> None:
        self._closing = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        tasks = [d.task for d in self._dialers if d.task is not None]
        for task in tasks:
            task.cancel()
        for link in list(self._links.values()):
            link.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        for dialer in self._dialers:
            await dialer.channel.close(grace=None)

    # ---- views ----

    def links(self) -> list[PeerLink]:
        return [link for link in self._links.values() if not link.closed.is_set()]

    def link_to(self, key: bytes) -> PeerLink | None:
        link = self._links.get(key)
        return None if link is None or link.closed.is_set() else link

    def sync_peers(self) -> list[SyncPeer]:
        """Dialed peers whose key we learnt, highest reported height first."""
        peers = []
        for dialer in self._dialers:
            if dialer.remote_key is None:
                continue
            link = self.link_to(dialer.remote_key)
            height = link.height if link is not None else 0
            peers.append(SyncPeer(dialer.remote_key, dialer.address, height, dialer.stub))
        return sorted(peers, key=lambda p: p.height, reverse=True)

    def peer_stubs(self) -> list[tuple[str, peer_pb2_grpc.PeerAsyncStub]]:
        """(address, stub) of every configured peer, linked or not: state sync asks them
        all for snapshots and checks whatever they send (node/state_sync.py)."""
        return [(dialer.address, dialer.stub) for dialer in self._dialers]

    def known_peers(self) -> list[tuple[str, bytes | None, PeerLink | None]]:
        """(address, key if known, live link or None): configured peers, then inbound ones."""
        out: list[tuple[str, bytes | None, PeerLink | None]] = []
        covered: set[bytes] = set()
        for dialer in self._dialers:
            link = self.link_to(dialer.remote_key) if dialer.remote_key else None
            out.append((dialer.address, dialer.remote_key, link))
            if dialer.remote_key:
                covered.add(dialer.remote_key)
        for link in self.links():
            if link.key not in covered:
                out.append((link.address, link.key, link))
        return out

    def dial_errors(self) -> dict[str, str]:
        return {d.address: d.last_error for d in self._dialers if d.last_error}

    def max_peer_height(self) -> int:
        return max((link.height for link in self.links()), default=0)

    # ---- sending ----

    def broadcast(self, message: peer_pb2.PeerMessage) -> None:
        """A consensus message to every validator link (observers only follow heights)."""
        self.stats[message.WhichOneof("kind") or "?"] += 1
        for link in self.links():
            if not link.observer:
                link.send(message)

    def announce_height(self, height: int) -> None:
        message = peer_pb2.PeerMessage(status=peer_pb2.PeerStatus(height=height))
        for link in self.links():
            link.send(message)

    def gossip(self, txs: Iterable[pb.SignedTx]) -> None:
        """Queue txs for the next TxBatch; flushed on a short timer or when the batch is full."""
        for tx in txs:
            self._pending_txs.append(tx)
            self._pending_bytes += tx.ByteSize()
            if (
                len(self._pending_txs) >= MAX_GOSSIP_BATCH_TXS
                or self._pending_bytes >= MAX_GOSSIP_BATCH_BYTES
            ):
                self.flush_gossip()
        if self._pending_txs and self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(GOSSIP_BATCH_INTERVAL_MS / 1000, self.flush_gossip)

    def flush_gossip(self) -> None:
        """Send the txs queued for gossip now (before a proposal that may hold them, so
        that peers get the txs first: they check the signatures once, in their pool)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending_txs:
            return
        batch = peer_pb2.PeerMessage(txs=peer_pb2.TxBatch(txs=self._pending_txs))
        self.stats["gossip_txs"] += len(self._pending_txs)
        self.stats["gossip_batches"] += 1
        self._pending_txs = []
        self._pending_bytes = 0
        for link in self.links():
            if not link.observer:
                link.send(batch)

    # ---- links ----

    def _new_dialer(self, address: str) -> _Dialer:
        channel = grpc.aio.secure_channel(
            address, self.tls.channel_credentials(), options=CHANNEL_OPTIONS
        )
        return _Dialer(address, channel, peer_pb2_grpc.PeerStub(channel))

    def _backoff_s(self, attempts: int) -> float:
        ceiling = min(PEER_RECONNECT_MAX_MS, PEER_RECONNECT_MIN_MS * 2 ** min(attempts, 16))
        # full jitter: nodes that lost each other at once do not redial in lockstep
        return self._rng.uniform(PEER_RECONNECT_MIN_MS, ceiling) / 1000

    async def _dial_forever(self, dialer: _Dialer) -> None:
        while not self._closing:
            existing = self.link_to(dialer.remote_key) if dialer.remote_key else None
            if existing is not None:
                # the pair already has its one stream (the one the peer dialed)
                await existing.closed.wait()
                await asyncio.sleep(self._backoff_s(0))
                continue
            try:
                call, link = await self._dial(dialer)
            except (grpc.aio.AioRpcError, SparkError, TimeoutError, ConnectionError) as exc:
                dialer.attempts += 1
                dialer.last_error = _describe(exc)
                if dialer.attempts == 1 or dialer.attempts % 20 == 0:
                    log.info(
                        "peer_dial_failed",
                        extra={"address": dialer.address, "error": dialer.last_error},
                    )
                await asyncio.sleep(self._backoff_s(dialer.attempts))
                continue
            dialer.attempts = 0
            dialer.last_error = ""
            dialer.remote_key = link.key
            try:
                await self._run_link(link, call.read, call.write)
            finally:
                call.cancel()

    async def _dial(
        self, dialer: _Dialer
    ) -> tuple[grpc.aio.StreamStreamCall[peer_pb2.PeerMessage, peer_pb2.PeerMessage], PeerLink]:
        call = dialer.stub.Connect()
        try:
            nonce = new_nonce()
            await call.write(
                peer_pb2.PeerMessage(handshake=hello(self.local, nonce, self._height()))
            )
            remote = await _read_handshake(call.read)
            check_answer(self.local, remote, nonce)
            no_room = self._no_observer_room(bytes(remote.public_key), remote.observer)
            if no_room:  # raised, so that the dial loop backs off
                raise SparkError(ErrorCode.UNAVAILABLE, f"not linking to an observer: {no_room}")
            reply = answer(self.local, nonce, remote.nonce, self._height(), remote.public_key)
            await call.write(peer_pb2.PeerMessage(handshake=reply))
        except BaseException:
            call.cancel()
            raise
        link = PeerLink(
            remote,
            outbound=True,
            address=dialer.address,
            local_key=self._key,
            totals=self.messages_sent,
            on_limit_hit=lambda limit: self.on_limit_hit(limit),
        )
        return call, link

    async def accept(
        self, context: grpc.aio.ServicerContext[peer_pb2.PeerMessage, peer_pb2.PeerMessage]
    ) -> None:
        """The acceptor side of Connect: handshake, then run the link until it ends."""
        try:
            first = await _read_handshake(context.read)
            check_admissible(self.local, first)
            _check_certificate_names(context, bytes(first.public_key))
            no_room = self._no_observer_room(bytes(first.public_key), first.observer)
            if no_room:
                refusal = f"RESOURCE_EXHAUSTED: {no_room}; try another node or later"
                log.info("peer_rejected", extra={"address": context.peer(), "error": refusal})
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
                return
            nonce = new_nonce()
            reply = answer(self.local, nonce, first.nonce, self._height(), first.public_key)
            await context.write(peer_pb2.PeerMessage(handshake=reply))
            second = await _read_handshake(context.read)
            if second.public_key != first.public_key or second.nonce != first.nonce:
                raise SparkError(ErrorCode.BAD_SIGNATURE, "handshake changed key or nonce")
            check_answer(self.local, second, nonce)
        except SparkError as exc:
            log.info("peer_rejected", extra={"address": context.peer(), "error": str(exc)})
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            return
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "TIMEOUT: peer handshake")
            return
        link = PeerLink(
            second,
            outbound=False,
            address=context.peer(),
            local_key=self._key,
            totals=self.messages_sent,
            on_limit_hit=lambda limit: self.on_limit_hit(limit),
        )
        await self._run_link(link, context.read, context.write)

    @property
    def _key(self) -> bytes:
        return self.local.key.public_key

    def _no_observer_room(self, key: bytes, observer: bool) -> str:
        """Why a link to this observer is refused now ("" if it is not): observer links
        are capped (MAX_OBSERVER_LINKS), so that their streams, queues and Status lines
        stay bounded however many observers the operator lists."""
        if not observer or key in self.local.validators:
            return ""
        held = sum(1 for link in self.links() if link.observer and link.key != key)
        if held < MAX_OBSERVER_LINKS:
            return ""
        self.on_limit_hit("MAX_OBSERVER_LINKS")
        return f"this node holds {held} observer links, MAX_OBSERVER_LINKS = {MAX_OBSERVER_LINKS}"

    def _register(self, link: PeerLink) -> bool:
        if self._no_observer_room(link.key, link.observer):
            return False  # others got in during this link's handshake
        existing = self.link_to(link.key)
        if existing is not None:
            # both ends apply the same rule, so both keep the same stream of the pair
            if link.dialer_key > existing.dialer_key:
                return False
            existing.close()
        self._links[link.key] = link
        return True

    async def _run_link(self, link: PeerLink, read: ReadFn, write: WriteFn) -> None:
        if self._closing or not self._register(link):
            return
        log.info(
            "peer_up",
            extra={"peer": link.key.hex()[:12], "outbound": link.outbound, "height": link.height},
        )
        try:
            self.events.on_link_up(link)
        except Exception:
            log.exception("peer_link_up_handler_failed")
        reader = asyncio.create_task(self._read_loop(link, read))
        writer = asyncio.create_task(link.pump(write))
        closed = asyncio.create_task(link.closed.wait())
        try:
            await asyncio.wait({reader, writer, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            link.close()
            for task in (reader, writer, closed):
                task.cancel()
            await asyncio.gather(reader, writer, closed, return_exceptions=True)
            if self._links.get(link.key) is link:
                del self._links[link.key]
            log.info("peer_down", extra={"peer": link.key.hex()[:12], "outbound": link.outbound})

    async def _read_loop(self, link: PeerLink, read: ReadFn) -> None:
        try:
            while True:
                message = await read()
                if not isinstance(message, peer_pb2.PeerMessage):  # grpc.aio.EOF
                    return
                self._dispatch(link, message)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return
        except Exception as exc:  # whatever ends a stream ends only this link
            log.debug("peer_read_failed", extra={"peer": link.key.hex()[:12], "error": repr(exc)})

    def _dispatch(self, link: PeerLink, message: peer_pb2.PeerMessage) -> None:
        kind = message.WhichOneof("kind")
        link.received[kind or "?"] += 1
        try:
            if kind == "proposal" and not link.observer:
                self.events.on_proposal(link, message.proposal)
            elif kind == "vote" and not link.observer:
                self.events.on_vote(link, message.vote)
            elif kind == "txs" and not link.observer:
                # txs travel between validators only (DESIGN §11): an observer's client
                # submits to a validator's API, where the tx is checked like any other
                self.events.on_txs(link, list(message.txs.txs[:MAX_GOSSIP_BATCH_TXS]))
            elif kind == "status":
                link.height = message.status.height
                self.events.on_height(link, link.height)
        except SparkError as refusal:
            # a message that is not what it claims (an undecodable block): the peer's
            # fault, so one line per peer per interval and no traceback
            self._refusals.log(
                logging.WARNING,
                link.key,
                "peer_message_refused",
                {"peer": link.key.hex()[:12], "kind": kind, "error": str(refusal)},
            )
        except Exception:
            # a bad message from one peer must not take the link (or the node) down
            self._refusals.log(
                logging.ERROR,
                link.key,
                "peer_message_handler_failed",
                {"peer": link.key.hex()[:12], "kind": kind},
                exc_info=True,
            )


class _PeerServicer(peer_pb2_grpc.PeerServicer):
    def __init__(self, network: PeerNetwork) -> None:
        self._network = network

    # The link reads and writes through the context (grpc.aio's reader/writer form of a
    # stream-stream handler: a coroutine that returns None). The generated stub only knows
    # the iterator form, so it wants an iterator back.
    async def Connect(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[peer_pb2.PeerMessage],
        context: grpc.aio.ServicerContext[peer_pb2.PeerMessage, peer_pb2.PeerMessage],
    ) -> None:
        await self._network.accept(context)

    async def GetBlocks(
        self,
        request: peer_pb2.GetBlocksRequest,
        context: grpc.aio.ServicerContext[peer_pb2.GetBlocksRequest, peer_pb2.CommittedBlock],
    ) -> AsyncIterator[peer_pb2.CommittedBlock]:
        source = self._network._block_source
        if source is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "UNAVAILABLE: no block source")
            return
        async for committed in source(request):
            yield committed

    async def ListSnapshots(
        self,
        request: peer_pb2.ListSnapshotsRequest,
        context: grpc.aio.ServicerContext[
            peer_pb2.ListSnapshotsRequest, peer_pb2.ListSnapshotsResponse
        ],
    ) -> peer_pb2.ListSnapshotsResponse:
        source = self._network._snapshot_source
        if source is None:
            return peer_pb2.ListSnapshotsResponse()
        return source.listed()

    async def GetSnapshotChunk(
        self,
        request: peer_pb2.GetSnapshotChunkRequest,
        context: grpc.aio.ServicerContext[peer_pb2.GetSnapshotChunkRequest, peer_pb2.SnapshotChunk],
    ) -> peer_pb2.SnapshotChunk:
        source = self._network._snapshot_source
        if source is None:
            raise SparkError(ErrorCode.NOT_FOUND, "this node keeps no snapshots")
        data = await asyncio.to_thread(source.chunk, request.height, request.index)
        return peer_pb2.SnapshotChunk(data=data)


def _check_certificate_names(
    context: grpc.aio.ServicerContext[peer_pb2.PeerMessage, peer_pb2.PeerMessage], key: bytes
) -> None:
    """The dialer's TLS certificate (checked against our CA by gRPC) must be bound to the
    key it shakes hands with: a stolen certificate without its node key, or a node key
    with another node's certificate, is refused."""
    certificates = list(context.auth_context().get(CLIENT_CERT_PROPERTY, []))
    if not certificates:
        raise SparkError(ErrorCode.UNAUTHORIZED, "peer showed no TLS client certificate")
    bound = node_key_in_certificate(certificates[0])
    if bound != key:
        named = bound.hex() if bound is not None else "no node key"
        raise SparkError(
            ErrorCode.UNAUTHORIZED,
            f"peer key {key.hex()} is not the key in its TLS certificate ({named})",
        )


async def _read_handshake(read: ReadFn) -> peer_pb2.Handshake:
    message = await asyncio.wait_for(read(), PEER_HANDSHAKE_TIMEOUT_MS / 1000)
    # not a PeerMessage: grpc.aio.EOF, the stream ended
    if not isinstance(message, peer_pb2.PeerMessage) or message.WhichOneof("kind") != "handshake":
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "peer did not start with a handshake")
    return message.handshake


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, TimeoutError):
        return "TIMEOUT: peer handshake"
    return str(exc)
