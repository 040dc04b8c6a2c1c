"""The public gRPC API of a node (api.proto, DESIGN §7): Identifiers and Chain services,
gRPC health checking and server reflection, on a grpc.aio server the runtime owns.

Reads come from the ledger's latest committed state; writes go through the mempool. Every
SparkError leaves as a gRPC status with "CODE: message" details (node/grpc_errors.py),
except on SubmitStream, where one refused tx must not end the stream: its response carries
error_code and error_message instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    DEFAULT_LIST_PAGE_SIZE,
    DEFAULT_SUBMIT_WAIT_MS,
    MAX_LIST_PAGE_SIZE,
    MAX_SUBMIT_WAIT_MS,
    SUBMIT_STREAM_WINDOW_BYTES,
    SUBMIT_STREAM_WINDOW_TXS,
)
from sparkchain.identifiers.tx import tx_id
from sparkchain.ledger.blocks import block_hash
from sparkchain.ledger.genesis import genesis_to_json
from sparkchain.ledger.records import filter_values
from sparkchain.node.events import CommitBus, prefix_matches, timeout_error
from sparkchain.node.forward import SubmitForwarder, UpstreamRefusal, relay_refusal
from sparkchain.node.grpc_errors import abort, abort_stuck_call, stream_errors, unary_errors
from sparkchain.node.ledger import Ledger
from sparkchain.node.mempool import Admission, Mempool
from sparkchain.node.stream_pacing import RefusalPacer
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger(__name__)

API_VERSION = "sparkchain/0.1.0"
SUBMIT_STREAM_BATCH_TXS = 512  # stream requests admitted together (one thread-pool round)
STREAM_ADMISSIONS_IN_FLIGHT = 2


class StatusSource(Protocol):
    """What only the running node knows; node.runtime implements it."""

    def role(self) -> str:
        """ "validator" or "observer"."""
        ...

    def node_name(self) -> str:
        """[node] name in config.toml."""
        ...

    def peers(self) -> Sequence[api_pb2.PeerInfo]: ...

    def syncing(self) -> bool: ...

    def validator_key(self) -> bytes:
        """This node's validator public key; b"" on an observer."""
        ...

    def http_listen(self) -> str:
        """The HTTP gateway's listen address; "" when it is off."""
        ...


def _committed_response(the_id: bytes, where: tuple[int, int]) -> api_pb2.SubmitResponse:
    height, index = where
    return api_pb2.SubmitResponse(tx_id=the_id, committed=True, height=height, index=index)


def _wait_seconds(timeout_ms: int) -> float:
    wait_ms = timeout_ms or DEFAULT_SUBMIT_WAIT_MS
    return min(wait_ms, MAX_SUBMIT_WAIT_MS) / 1000


class IdentifiersService(api_pb2_grpc.IdentifiersServicer):
    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        bus: CommitBus,
        *,
        observer: bool = False,
        forwarder: SubmitForwarder | None = None,
    ) -> None:
        """On an observer (`observer`), writes go to `forwarder`, or are refused READ_ONLY
        without one: an observer's own mempool never takes a client's tx (DESIGN §11)."""
        self._observer = observer
        self._forwarder = forwarder
        self._ledger = ledger
        self._mempool = mempool
        self._bus = bus
        # shared by every SubmitStream: what a client sends faster than txs are admitted
        # waits in its connection (flow control), not in our memory
        self._stream_window = ByteWindow(SUBMIT_STREAM_WINDOW_BYTES)
        self._ending_calls: set[asyncio.Task[None]] = set()  # Watch calls ended from outside

    # ---- writes ----

    @unary_errors
    async def Submit(
        self,
        request: api_pb2.SubmitRequest,
        context: grpc.aio.ServicerContext[api_pb2.SubmitRequest, api_pb2.SubmitResponse],
    ) -> api_pb2.SubmitResponse:
        if not request.HasField("tx"):
            raise SparkError(ErrorCode.INVALID_TX, "SubmitRequest has no tx")
        if self._observer:
            return await self._forwarded(request, context)
        try:
            the_id = await self._mempool.add(request.tx)
        except SparkError as error:
            if error.code is not ErrorCode.DUPLICATE_TX or not request.wait_for_commit:
                raise
            # the same tx sent again (a client retrying after a lost answer, an observer
            # forwarding to the next validator): its outcome is what the client waits for
            the_id = tx_id(request.tx, self._ledger.hash_fn)
            where = self._ledger.tx_location(the_id)
            if where is not None:
                return _committed_response(the_id, where)
        if not request.wait_for_commit:
            return api_pb2.SubmitResponse(tx_id=the_id)
        where = await self._bus.wait_for_tx(the_id, _wait_seconds(request.timeout_ms))
        return _committed_response(the_id, where)

    async def SubmitStream(
        self,
        request_iterator: AsyncIterator[api_pb2.SubmitRequest],
        context: grpc.aio.ServicerContext[api_pb2.SubmitRequest, api_pb2.SubmitResponse],
    ) -> AsyncIterator[api_pb2.SubmitResponse]:
        """One response per request, in request order. Requests are admitted in batches as
        they arrive (one signature round in the thread pool per batch); a request waiting
        for its commit does not hold back the admission of the ones behind it."""
        if self._observer:
            async for response in self._forwarded_stream(request_iterator, context):
                yield response
            return
        inbox: asyncio.Queue[tuple[api_pb2.SubmitRequest, asyncio.Future[api_pb2.SubmitResponse]]]
        inbox = asyncio.Queue()
        # bounded: when the client sends faster than we answer, reading pauses (backpressure)
        outbox: asyncio.Queue[asyncio.Future[api_pb2.SubmitResponse] | None] = asyncio.Queue(
            SUBMIT_STREAM_WINDOW_TXS
        )
        loop = asyncio.get_running_loop()
        waits: set[asyncio.Task[None]] = set()
        commits = _CommitWaits(self._bus, loop)

        window = self._stream_window
        pacer = RefusalPacer()  # slower reads while the mempool refuses this stream room
        unadmitted = 0  # this stream's share of the window, given back when it ends
        ended = False

        async def read() -> None:
            nonlocal unadmitted
            try:
                async for request in request_iterator:
                    size = request.ByteSize()
                    await window.take(size)
                    unadmitted += size
                    answer: asyncio.Future[api_pb2.SubmitResponse] = loop.create_future()
                    await outbox.put(answer)
                    inbox.put_nowait((request, answer))
                    await pacer.before_read()
            finally:
                await outbox.put(None)

        async def admit() -> None:
            # two batches at once: one's signatures are checked in the thread pool while
            # the other's rules run on the loop
            slots = asyncio.Semaphore(STREAM_ADMISSIONS_IN_FLIGHT)
            while True:
                batch = [await inbox.get()]
                while len(batch) < SUBMIT_STREAM_BATCH_TXS and not inbox.empty():
                    batch.append(inbox.get_nowait())
                await slots.acquire()
                size = sum(request.ByteSize() for request, _ in batch)
                task = asyncio.create_task(self._admit_stream_batch(batch, commits, pacer))

                def admitted(_: object, size: int = size) -> None:
                    nonlocal unadmitted
                    slots.release()
                    if not ended:  # else the stream's end gave it back
                        unadmitted -= size
                        window.give_back(size)

                task.add_done_callback(admitted)
                waits.add(task)
                task.add_done_callback(waits.discard)

        reader = asyncio.create_task(read())
        admitter = asyncio.create_task(admit())
        try:
            while True:
                answer = await outbox.get()
                if answer is None:
                    break
                yield await answer
            await reader  # surfaces a broken request stream
        finally:
            reader.cancel()
            admitter.cancel()
            for task in waits:
                task.cancel()
            commits.close()
            ended = True
            window.give_back(unadmitted)  # read, and not admitted before the end

    async def _forwarded(
        self,
        request: api_pb2.SubmitRequest,
        context: grpc.aio.ServicerContext[api_pb2.SubmitRequest, api_pb2.SubmitResponse],
    ) -> api_pb2.SubmitResponse:
        forwarder = self._writes_forwarder()
        wait_s = _wait_seconds(request.timeout_ms) if request.wait_for_commit else 0.0
        try:
            return await forwarder.submit(request, wait_s)
        except UpstreamRefusal as refusal:
            await relay_refusal(context, refusal)
            raise  # abort() raised already; this satisfies the type checker

    async def _forwarded_stream(
        self,
        requests: AsyncIterator[api_pb2.SubmitRequest],
        context: grpc.aio.ServicerContext[api_pb2.SubmitRequest, api_pb2.SubmitResponse],
    ) -> AsyncIterator[api_pb2.SubmitResponse]:
        try:
            async for response in self._writes_forwarder().submit_stream(requests):
                yield response
        except SparkError as error:
            await abort(context, error)
        except UpstreamRefusal as refusal:
            await relay_refusal(context, refusal)

    def _writes_forwarder(self) -> SubmitForwarder:
        if self._forwarder is None:
            raise SparkError(
                ErrorCode.READ_ONLY,
                "this node is an observer: it serves reads, and forwards writes only when "
                "[api] submit_to lists validators' API addresses; submit to a validator",
            )
        return self._forwarder

    async def _admit_stream_batch(
        self,
        batch: list[tuple[api_pb2.SubmitRequest, asyncio.Future[api_pb2.SubmitResponse]]],
        commits: _CommitWaits,
        pacer: RefusalPacer,
    ) -> None:
        for request, answer in batch:
            if not request.HasField("tx"):
                error = SparkError(ErrorCode.INVALID_TX, "request has no tx")
                answer.set_result(_error_response(b"", error))
        batch = [(request, answer) for request, answer in batch if request.HasField("tx")]
        txs = [request.tx for request, _ in batch]
        try:
            results: list[Admission] = await self._mempool.add_many(txs, origin=None)
        except Exception as exc:  # a bug must not leave the stream waiting forever
            log.exception("SubmitStream admission failed")
            for _, answer in batch:
                error = SparkError(ErrorCode.UNAVAILABLE, f"node failed to admit the tx: {exc}")
                answer.set_result(_error_response(b"", error))
            return
        pacer.batch_answered(None if r.error is None else r.error.code for r in results)
        waiting: list[tuple[bytes, float, asyncio.Future[api_pb2.SubmitResponse]]] = []
        for (request, answer), result in zip(batch, results, strict=True):
            resent = (
                result.error is not None
                and result.error.code is ErrorCode.DUPLICATE_TX
                and request.wait_for_commit
            )
            where = self._ledger.tx_location(result.tx_id) if resent else None
            if where is not None:  # the same tx sent again, already committed
                answer.set_result(_committed_response(result.tx_id, where))
            elif result.error is not None and not resent:
                answer.set_result(_error_response(result.tx_id, result.error))
            elif request.wait_for_commit:
                waiting.append((result.tx_id, _wait_seconds(request.timeout_ms), answer))
            else:
                answer.set_result(api_pb2.SubmitResponse(tx_id=result.tx_id))
        commits.add(waiting)

    # ---- reads ----

    @unary_errors
    async def Resolve(
        self,
        request: api_pb2.ResolveRequest,
        context: grpc.aio.ServicerContext[api_pb2.ResolveRequest, api_pb2.ResolveResponse],
    ) -> api_pb2.ResolveResponse:
        if not request.with_proof:
            if request.height:  # from the history, which pruning leaves complete
                record = self._ledger.resolve_at(
                    request.identifier, request.height, request.types, request.indexes
                )
                return api_pb2.ResolveResponse(record=record, height=request.height, found=True)
            height = self._ledger.height
            record = self._ledger.resolve(request.identifier, request.types, request.indexes)
            return api_pb2.ResolveResponse(record=record, height=height, found=True)
        record_or_none, proof = self._ledger.resolve_with_proof(request.identifier, request.height)
        header = pb.BlockHeader()
        header.ParseFromString(proof.header)
        response = api_pb2.ResolveResponse(
            height=header.height, found=record_or_none is not None, proof=proof
        )
        if record_or_none is not None:
            response.record.CopyFrom(filter_values(record_or_none, request.types, request.indexes))
        return response

    @unary_errors
    async def History(
        self,
        request: api_pb2.HistoryRequest,
        context: grpc.aio.ServicerContext[api_pb2.HistoryRequest, api_pb2.HistoryResponse],
    ) -> api_pb2.HistoryResponse:
        entries = self._ledger.history(request.identifier, limit=request.limit)
        return api_pb2.HistoryResponse(entries=entries)

    @unary_errors
    async def List(
        self,
        request: api_pb2.ListRequest,
        context: grpc.aio.ServicerContext[api_pb2.ListRequest, api_pb2.ListResponse],
    ) -> api_pb2.ListResponse:
        page_size = min(request.page_size or DEFAULT_LIST_PAGE_SIZE, MAX_LIST_PAGE_SIZE)
        records, next_token = self._ledger.list_identifiers(
            request.prefix, page_size=page_size, page_token=request.page_token
        )
        return api_pb2.ListResponse(records=records, next_page_token=next_token)

    @unary_errors
    async def PrefixInfo(
        self,
        request: api_pb2.PrefixInfoRequest,
        context: grpc.aio.ServicerContext[api_pb2.PrefixInfoRequest, api_pb2.PrefixInfoResponse],
    ) -> api_pb2.PrefixInfoResponse:
        prefix, children = self._ledger.prefix_info(request.prefix)
        return api_pb2.PrefixInfoResponse(prefix=prefix, children=children)

    @stream_errors
    async def Watch(
        self,
        request: api_pb2.WatchRequest,
        context: grpc.aio.ServicerContext[api_pb2.WatchRequest, api_pb2.ChangeEvent],
    ) -> AsyncIterator[api_pb2.ChangeEvent]:
        # subscribe before replaying so that no block falls between the two
        client = client_host(context.peer())
        # a stream stuck writing to a client that does not read falls behind the log while
        # it waits in gRPC: the bus ends its call then, so it does not keep its place
        call = asyncio.current_task()

        def end_stuck_call(error: SparkError) -> None:
            ending = asyncio.create_task(abort_stuck_call(context, call, error))
            self._ending_calls.add(ending)
            ending.add_done_callback(self._ending_calls.discard)

        with self._bus.subscribe(request.prefix, client, end_stuck_call) as subscription:
            replayed_to = 0
            if request.from_height:
                replayed_to = self._ledger.height
                for height in range(request.from_height, replayed_to + 1):
                    for event in self._ledger.changes_at(height):
                        if prefix_matches(subscription.prefix_key, event):
                            yield event
            async for event in subscription:
                if event.height > replayed_to:
                    yield event


class ByteWindow:
    """Bytes of requests read but not yet handled, at most `limit`; a request larger than
    what is free waits until the window is empty, so the largest legal request still
    passes. So at most `limit` plus one request per reader are held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._freed = asyncio.Event()

    async def take(self, size: int) -> None:
        while self.held and self.held + size > self.limit:
            self._freed.clear()
            await self._freed.wait()
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size
        self._freed.set()


def client_host(peer: str) -> str:
    """The client's host in a gRPC peer string, without its port: "ipv4:10.0.0.5:51234" →
    "10.0.0.5", "ipv6:[::1]:51234" → "[::1]"; any other form (unix sockets) whole."""
    scheme, _, address = peer.partition(":")
    if scheme in ("ipv4", "ipv6") and ":" in address:
        return address.rsplit(":", 1)[0]
    return peer


class _CommitWaits:
    """The commit waits of one SubmitStream: a future per tx from the commit bus, and one
    timer per admitted batch (not a task and a timer per tx: a stream of 10,000 txs would
    otherwise cost 10,000 of each)."""

    def __init__(self, bus: CommitBus, loop: asyncio.AbstractEventLoop) -> None:
        self._bus = bus
        self._loop = loop
        # each waiting tx: its id and the answer the stream yields for it
        self._pending: dict[
            asyncio.Future[tuple[int, int]],
            tuple[bytes, asyncio.Future[api_pb2.SubmitResponse]],
        ] = {}
        self._timers: dict[object, asyncio.TimerHandle] = {}  # one per batch, until it fires

    def add(
        self, waiting: list[tuple[bytes, float, asyncio.Future[api_pb2.SubmitResponse]]]
    ) -> None:
        by_timeout: dict[float, list[asyncio.Future[tuple[int, int]]]] = {}
        for the_id, timeout_s, answer in waiting:
            commit = self._bus.watch_tx(the_id)
            if commit.done():
                _settle(the_id, commit, answer)
                continue
            self._pending[commit] = (the_id, answer)
            commit.add_done_callback(self._on_done)
            by_timeout.setdefault(timeout_s, []).append(commit)
        for timeout_s, commits in by_timeout.items():
            key = object()
            self._timers[key] = self._loop.call_later(
                timeout_s, self._expire, key, commits, timeout_s
            )

    def _on_done(self, commit: asyncio.Future[tuple[int, int]]) -> None:
        entry = self._pending.pop(commit, None)
        if entry is not None:  # else it timed out or the stream closed
            _settle(entry[0], commit, entry[1])

    def _expire(
        self, key: object, commits: list[asyncio.Future[tuple[int, int]]], timeout_s: float
    ) -> None:
        del self._timers[key]
        for commit in commits:
            entry = self._pending.pop(commit, None)
            if entry is None:
                continue  # answered already
            the_id, answer = entry
            self._bus.forget(the_id, commit)
            if not answer.done():
                answer.set_result(_error_response(the_id, timeout_error(the_id, timeout_s)))

    def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        pending, self._pending = self._pending, {}
        for commit, (the_id, _) in pending.items():
            self._bus.forget(the_id, commit)


def _settle(
    the_id: bytes,
    commit: asyncio.Future[tuple[int, int]],
    answer: asyncio.Future[api_pb2.SubmitResponse],
) -> None:
    if answer.done() or commit.cancelled():
        return
    error = commit.exception()
    if isinstance(error, SparkError):
        answer.set_result(_error_response(the_id, error))
    elif error is not None:
        answer.set_result(_error_response(the_id, SparkError(ErrorCode.UNAVAILABLE, str(error))))
    else:
        height, index = commit.result()
        answer.set_result(
            api_pb2.SubmitResponse(tx_id=the_id, committed=True, height=height, index=index)
        )


def _error_response(the_id: bytes, error: SparkError) -> api_pb2.SubmitResponse:
    return api_pb2.SubmitResponse(
        tx_id=the_id,
        error_code=str(error.code),
        error_message=error.message,
        error_item_index=error.item_index,
    )


class ChainService(api_pb2_grpc.ChainServicer):
    def __init__(self, ledger: Ledger, mempool: Mempool, status: StatusSource) -> None:
        self._ledger = ledger
        self._mempool = mempool
        self._status = status

    @unary_errors
    async def Status(
        self,
        request: api_pb2.StatusRequest,
        context: grpc.aio.ServicerContext[api_pb2.StatusRequest, api_pb2.StatusResponse],
    ) -> api_pb2.StatusResponse:
        ledger = self._ledger
        header = ledger.last_header()
        return api_pb2.StatusResponse(
            chain_id=ledger.chain_id,
            height=ledger.height,
            state_root=ledger.state_root,
            last_block_hash=ledger.last_block_hash,
            last_block_time_ms=header.time_ms if header is not None else 0,
            role=self._status.role(),
            peers=list(self._status.peers()),
            validator=self._status.validator_key(),
            mempool_size=len(self._mempool),
            version=API_VERSION,
            syncing=self._status.syncing(),
            http=self._status.http_listen(),
        )

    @unary_errors
    async def GetBlock(
        self,
        request: api_pb2.GetBlockRequest,
        context: grpc.aio.ServicerContext[api_pb2.GetBlockRequest, api_pb2.GetBlockResponse],
    ) -> api_pb2.GetBlockResponse:
        which = request.WhichOneof("by")
        if which == "hash":
            height = self._ledger.block_height(request.hash)
        elif which == "height":
            height = request.height
        else:
            raise SparkError(ErrorCode.INVALID_ARGUMENT, "GetBlockRequest needs a height or hash")
        block, _, certificate = self._ledger.get_block(height)
        header = pb.BlockHeader()
        header.ParseFromString(block.header)
        response = api_pb2.GetBlockResponse(
            block=block, block_hash=block_hash(block.header, self._ledger.hash_fn), header=header
        )
        if certificate is not None:
            response.commit.CopyFrom(certificate)
        return response

    @unary_errors
    async def GetTx(
        self,
        request: api_pb2.GetTxRequest,
        context: grpc.aio.ServicerContext[api_pb2.GetTxRequest, api_pb2.GetTxResponse],
    ) -> api_pb2.GetTxResponse:
        signed, height, index = self._ledger.get_tx(request.tx_id)
        return api_pb2.GetTxResponse(
            tx=signed, tx_id=tx_id(signed, self._ledger.hash_fn), height=height, index=index
        )

    @unary_errors
    async def Genesis(
        self,
        request: api_pb2.GenesisRequest,
        context: grpc.aio.ServicerContext[api_pb2.GenesisRequest, api_pb2.GenesisResponse],
    ) -> api_pb2.GenesisResponse:
        return api_pb2.GenesisResponse(
            genesis_json=genesis_to_json(self._ledger.genesis).encode("utf-8")
        )

    @unary_errors
    async def Validators(
        self,
        request: api_pb2.ValidatorsRequest,
        context: grpc.aio.ServicerContext[api_pb2.ValidatorsRequest, api_pb2.ValidatorsResponse],
    ) -> api_pb2.ValidatorsResponse:
        ledger = self._ledger
        height = request.height or ledger.height + 1
        members = ledger.validator_set_at(height)  # INVALID_ARGUMENT outside 1..height+2
        return api_pb2.ValidatorsResponse(
            height=height,
            validators=members,
            changes=ledger.proved_validator_changes(min(height - 1, ledger.height)),
        )


SERVICE_NAMES = (
    api_pb2.DESCRIPTOR.services_by_name["Identifiers"].full_name,
    api_pb2.DESCRIPTOR.services_by_name["Chain"].full_name,
)


def add_services(
    server: grpc.aio.Server,
    ledger: Ledger,
    mempool: Mempool,
    bus: CommitBus,
    status: StatusSource,
    forwarder: SubmitForwarder | None = None,
) -> health.aio.HealthServicer:
    """Register Identifiers, Chain, health and reflection on `server` (before start()).

    Returns the health servicer, every service marked SERVING; the runtime may set
    NOT_SERVING while it syncs or shuts down."""
    identifiers = IdentifiersService(
        ledger, mempool, bus, observer=status.role() == "observer", forwarder=forwarder
    )
    api_pb2_grpc.add_IdentifiersServicer_to_server(identifiers, server)
    api_pb2_grpc.add_ChainServicer_to_server(ChainService(ledger, mempool, status), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    for name in ("", *SERVICE_NAMES):
        set_health_now(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    return health_servicer


def set_health_now(
    health_servicer: health.aio.HealthServicer,
    service: str,
    status: int,  # a HealthCheckResponse.ServingStatus
) -> None:
    """Set a health status from synchronous code. The servicer's `set` is a coroutine that
    only suspends to wake Watch callers; before the server starts there are none, so it
    runs to completion on its first step."""
    step = health_servicer.set(service, status)
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()
    raise RuntimeError("health status set while Watch callers exist: await servicer.set()")
