"""Load generators for the node benchmark: one grpc.aio client process, used the same way
against sparkchain nodes, a bare echo server and etcd, so ratios compare servers, not
clients."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc

from sparkchain.identifiers.limits import MAX_API_MESSAGE_BYTES
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_API_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_API_MESSAGE_BYTES),
]


@dataclass(frozen=True)
class Throughput:
    done: int
    failed: int
    seconds: float
    latencies_ms: tuple[float, ...] = ()

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, share: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


# what a client does on MEMPOOL_FULL (as `spark import` does): send the refused txs again
# after a pause, a bounded number of times
RETRY_PAUSE_S = 0.5
MAX_RETRY_ROUNDS = 40


async def stream_submit(
    addresses: Sequence[str], txs: Sequence[pb.SignedTx], streams: int = 1
) -> Throughput:
    """Send every tx on SubmitStream (waiting for commit), spread over `streams` streams
    round-robin over `addresses`; time until the last commit is acknowledged. Txs refused
    with MEMPOOL_FULL (one signer holds at most its share of a mempool, and each mempool
    also holds what the other validators gossiped) are sent again after a pause, as
    `spark import` does; what still fails counts as failed."""
    channels = [channel(a) for a in addresses]

    async def one(index: int, part: Sequence[pb.SignedTx]) -> tuple[int, list[pb.SignedTx], int]:
        stub = api_pb2_grpc.IdentifiersStub(channels[index % len(channels)])

        async def requests():  # type: ignore[no-untyped-def]
            for tx in part:
                yield api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=120_000)

        ok = failed = 0
        again: list[pb.SignedTx] = []
        # answers come in request order on one stream
        async for tx, response in _zip_answers(part, stub.SubmitStream(requests())):
            if response.error_code == "MEMPOOL_FULL":
                again.append(tx)
            elif response.error_code:
                failed += 1
            else:
                ok += 1
        return ok, again, failed

    started = time.perf_counter()
    pending: Sequence[pb.SignedTx] = txs
    done = failed = 0
    for round_number in range(MAX_RETRY_ROUNDS):
        if round_number:
            await asyncio.sleep(RETRY_PAUSE_S)
        parts = [pending[i::streams] for i in range(streams)]
        results = await asyncio.gather(*(one(i, part) for i, part in enumerate(parts)))
        done += sum(r[0] for r in results)
        failed += sum(r[2] for r in results)
        pending = [tx for r in results for tx in r[1]]
        if not pending:
            break
    seconds = time.perf_counter() - started
    for ch in channels:
        await ch.close()
    return Throughput(done, failed + len(pending), seconds)


async def _zip_answers(
    txs: Sequence[pb.SignedTx], answers: AsyncIterator[api_pb2.SubmitResponse]
) -> AsyncIterator[tuple[pb.SignedTx, api_pb2.SubmitResponse]]:
    index = 0
    async for answer in answers:
        yield txs[index], answer
        index += 1


async def paced_submit(address: str, txs: Sequence[pb.SignedTx], per_second: float) -> Throughput:
    """Submit at a fixed rate on one SubmitStream; latency = commit answer - send time."""
    ch = channel(address)
    stub = api_pb2_grpc.IdentifiersStub(ch)
    sent_at: list[float] = []
    interval = 1.0 / per_second

    async def requests():  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        for index, tx in enumerate(txs):
            delay = start + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at.append(time.perf_counter())
            yield api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=120_000)

    latencies: list[float] = []
    ok = failed = 0
    started = time.perf_counter()
    async for response in stub.SubmitStream(requests()):
        # answers come in request order
        latencies.append((time.perf_counter() - sent_at[ok + failed]) * 1000)
        if response.error_code:
            failed += 1
        else:
            ok += 1
    seconds = time.perf_counter() - started
    await ch.close()
    return Throughput(ok, failed, seconds, tuple(latencies))


async def closed_loop(
    call: Callable[[int], Awaitable[object]], in_flight: int, seconds: float
) -> Throughput:
    """`in_flight` workers each calling `call` back to back for `seconds`."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def worker(worker_index: int) -> None:
        nonlocal failures
        index = worker_index
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                await call(index)
            except grpc.aio.AioRpcError:
                failures += 1
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            index += in_flight

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(in_flight)))
    seconds_taken = time.perf_counter() - started
    return Throughput(len(latencies), failures, seconds_taken, tuple(latencies))


async def resolve_load(
    address: str, identifiers: Sequence[str], with_proof: bool, in_flight: int, seconds: float
) -> Throughput:
    ch = channel(address)
    stub = api_pb2_grpc.IdentifiersStub(ch)
    picks = random.Random(7)
    order = [identifiers[picks.randrange(len(identifiers))] for _ in range(4096)]

    async def call(index: int) -> object:
        request = api_pb2.ResolveRequest(identifier=order[index % 4096], with_proof=with_proof)
        return await stub.Resolve(request, timeout=10)

    try:
        return await closed_loop(call, in_flight, seconds)
    finally:
        await ch.close()


async def raw_unary_load(
    address: str, method: str, payloads: Sequence[bytes], in_flight: int, seconds: float
) -> Throughput:
    """Unary calls of `method` with ready-made request bytes (echo server, etcd)."""
    ch = channel(address)
    rpc = ch.unary_unary(method, request_serializer=None, response_deserializer=None)

    async def call(index: int) -> object:
        return await rpc(payloads[index % len(payloads)], timeout=10)

    try:
        return await closed_loop(call, in_flight, seconds)
    finally:
        await ch.close()
