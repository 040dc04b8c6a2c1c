"""What an outsider can make a node hold (DESIGN §11, issue 10 findings 4 and 5): request
bytes (the API and the peer port receive nothing larger than their largest legal message),
calls in flight, connections and the file descriptors they take. Through the in-process API
node (tests/helpers/api_node.py, which serves with the node's own server options) and
through real node processes started from a `spark init` home."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sparkchain.cli.main import main
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    API_HTTP2_WINDOW_BYTES,
    DEFAULT_API_MAX_CONNECTIONS,
    LEVELDB_MAX_OPEN_FILES,
    MAX_API_CONCURRENT_RPCS,
    MAX_API_REQUEST_BYTES,
    MAX_PEER_CONNECTIONS,
    MAX_PEER_MESSAGE_BYTES,
    MAX_TX_BYTES,
    MAX_VALUE_DATA_BYTES,
    RESERVED_DESCRIPTORS,
    SUBMIT_STREAM_PACE_FIRST_S,
    SUBMIT_STREAM_PACE_MAX_S,
    SUBMIT_STREAM_WINDOW_BYTES,
)
from sparkchain.identifiers.tx import value
from sparkchain.node.config import parse_config
from sparkchain.node.descriptors import plan_descriptors
from sparkchain.node.home import NodeHome, free_loopback_ports
from sparkchain.node.mempool import Admission
from sparkchain.node.stream_pacing import RefusalPacer
from sparkchain.node.tls import PEER_SERVER_NAME
from sparkchain.proto import api_pb2, api_pb2_grpc, peer_pb2
from sparkchain.proto import types_pb2 as pb
from tests.chaos.proxy import ProxyNet
from tests.helpers.api_node import ApiNode, wall_ms
from tests.helpers.chain import TxMaker, key
from tests.helpers.cluster import until

CALLS = 8  # oversized calls at once
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0


def _raw(data: bytes) -> bytes:
    return data


# ---------------------------------------------------------------------------- descriptors


def test_connections_get_what_the_open_files_limit_leaves_after_leveldb_and_the_reserve() -> None:
    fixed = LEVELDB_MAX_OPEN_FILES + RESERVED_DESCRIPTORS
    roomy = plan_descriptors(1024 * 1024, DEFAULT_API_MAX_CONNECTIONS)
    assert (roomy.peer_connections, roomy.api_connections) == (
        MAX_PEER_CONNECTIONS,
        DEFAULT_API_MAX_CONNECTIONS,
    )
    common = plan_descriptors(1024, DEFAULT_API_MAX_CONNECTIONS)  # the usual default limit
    assert common.peer_connections + common.api_connections + fixed <= 1024
    assert common.peer_connections == common.api_connections == (1024 - fixed) // 2
    assert plan_descriptors(1024 * 1024, 7).api_connections == 7


def test_an_open_files_limit_below_leveldb_and_the_reserve_is_invalid_config() -> None:
    with pytest.raises(SparkError) as refused:
        plan_descriptors(LEVELDB_MAX_OPEN_FILES + RESERVED_DESCRIPTORS, 1024)
    assert refused.value.code == ErrorCode.INVALID_CONFIG
    assert "open-files limit" in refused.value.message


@pytest.mark.parametrize("bad", ["0", "-1", "1000001", '"many"'])
def test_api_max_connections_out_of_range_is_invalid_config(bad: str) -> None:
    text = '[node]\nname = "n"\nrole = "validator"\n[api]\nlisten = "127.0.0.1:1"\n'
    text += f'max_connections = {bad}\n[p2p]\nlisten = "127.0.0.1:2"\n'
    with pytest.raises(SparkError) as refused:
        parse_config(text)
    assert refused.value.code == ErrorCode.INVALID_CONFIG
    assert "api.max_connections" in refused.value.message


# ---------------------------------------------------------------------------- in-process API


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    started = await ApiNode(tmp_path / "ledger").start()
    yield started
    await started.stop()


def near_max_batch(node: ApiNode) -> pb.SignedTx:
    """A legal RegisterBatch as close below MAX_TX_BYTES as whole items allow."""
    maker = TxMaker(node.genesis.chain_id, key("acme"), 7)
    data = b"d" * MAX_VALUE_DATA_BYTES

    def batch(count: int) -> pb.SignedTx:
        items = [
            (f"big-{i}", [value(1, "DATA", data), value(2, "DATA", data), value(3, "DATA", data)])
            for i in range(count)
        ]
        return maker.register_batch("88", items, now_ms=wall_ms())

    one = len(batch(1).body)
    two = len(batch(2).body)
    count = (MAX_TX_BYTES - one) // (two - one) + 1
    signed = batch(count)
    assert MAX_TX_BYTES - (two - one) < len(signed.body) <= MAX_TX_BYTES
    return signed


async def test_a_submit_of_a_tx_near_the_size_limit_is_received_and_committed(
    node: ApiNode,
) -> None:
    signed = near_max_batch(node)
    async with grpc.aio.insecure_channel(node.address) as channel:
        answer = await api_pb2_grpc.IdentifiersStub(channel).Submit(
            api_pb2.SubmitRequest(tx=signed, wait_for_commit=True), timeout=CALL_TIMEOUT_S
        )
    assert answer.committed


async def test_an_oversized_request_is_refused_having_sent_at_most_a_window_of_it(
    node: ApiNode,
) -> None:
    """Issue 10 attack 4: the API's HTTP/2 windows stay fixed (no BDP probing), so a
    request over the receive limit is refused once the client has sent about a window of it,
    never megabytes more per call (measured in `make attack`: node1 +331 MiB RSS and 2.5 s of
    CPU over 108 such calls with growing windows, +6 MiB and 0.2 s with fixed ones)."""
    proxies = ProxyNet(seed=4)
    try:
        address = proxies.add_link("client", "api", node.address)
        request = api_pb2.ResolveRequest(identifier="a" * (64 * 1024 * 1024)).SerializeToString()
        options = [("grpc.max_send_message_length", -1)]
        async with grpc.aio.insecure_channel(address, options=options) as channel:
            rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/spark.v1.Identifiers/Resolve",
                request_serializer=_raw,
                response_deserializer=_raw,
            )
            calls = [rpc(request, timeout=CALL_TIMEOUT_S) for _ in range(CALLS)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        codes = [r.code() if isinstance(r, grpc.aio.AioRpcError) else r for r in results]
        assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * CALLS
        sent = proxies.links[("client", "api")].forwarded_bytes
        assert sent <= 2 * CALLS * API_HTTP2_WINDOW_BYTES  # (growing windows: ~100 MB)
    finally:
        proxies.close()


async def test_calls_beyond_the_concurrent_call_limit_are_resource_exhausted(
    node: ApiNode,
) -> None:
    async with grpc.aio.insecure_channel(node.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        streams = [
            health.Watch(health_pb2.HealthCheckRequest()) for _ in range(MAX_API_CONCURRENT_RPCS)
        ]
        try:
            for stream in streams:  # each one is being served: it has sent its first answer
                await asyncio.wait_for(stream.read(), CALL_TIMEOUT_S)
            chain = api_pb2_grpc.ChainStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await chain.Status(api_pb2.StatusRequest(), timeout=CALL_TIMEOUT_S)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            streams.pop().cancel()
            await asyncio.sleep(0.2)  # the server sees the cancellation
            status = await chain.Status(api_pb2.StatusRequest(), timeout=CALL_TIMEOUT_S)
            assert status.height >= 0
        finally:
            for stream in streams:
                stream.cancel()


async def test_a_submit_stream_stops_reading_when_the_unadmitted_bytes_fill_the_window(
    node: ApiNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    admitting = asyncio.Event()  # admission is held up until the test lets it go
    add_many = node.mempool.add_many

    async def held_up(txs: list[pb.SignedTx], origin: str | None) -> list[Admission]:
        await admitting.wait()
        return await add_many(txs, origin=origin)

    monkeypatch.setattr(node.mempool, "add_many", held_up)
    request_bytes = 1024 * 1024
    request = api_pb2.SubmitRequest(tx=pb.SignedTx(body=b"b" * request_bytes))
    sent = 0
    async with grpc.aio.insecure_channel(node.address) as channel:
        stream = api_pb2_grpc.IdentifiersStub(channel).SubmitStream()
        # the window, plus what the connection's buffers take, but not all of it
        for _ in range(3 * SUBMIT_STREAM_WINDOW_BYTES // request_bytes):
            write = asyncio.ensure_future(stream.write(request))
            # long enough that a loaded machine's slow write is not taken for a full window
            done, _ = await asyncio.wait({write}, timeout=10.0)
            if not done:
                break  # not cancelled: that would cancel the call
            sent += 1
        assert sent < 2 * SUBMIT_STREAM_WINDOW_BYTES // request_bytes, sent
        assert sent >= SUBMIT_STREAM_WINDOW_BYTES // request_bytes, sent
        admitting.set()  # every request read so far is answered, then the rest are read
        await write
        await stream.done_writing()
        answers = [answer async for answer in stream]
    assert len(answers) >= sent
    assert all(answer.error_code for answer in answers)  # junk bodies, each one refused


async def test_a_submit_stream_refused_for_room_is_read_ever_more_slowly_until_admitted(
    node: ApiNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 attack 2b: each request refused for room costs a read and an answer on the
    event loop, so the stream's reads are paced (node/stream_pacing.py)."""
    answers = iter(
        [ErrorCode.MEMPOOL_FULL] * 4 + [ErrorCode.BAD_SIGNATURE] + [None, ErrorCode.MEMPOOL_FULL]
    )

    async def decided(txs: list[pb.SignedTx], origin: str | None) -> list[Admission]:
        codes = [next(answers) for _ in txs]
        return [
            Admission(bytes(32), None if code is None else SparkError(code, "decided"))
            for code in codes
        ]

    pauses: list[float] = []
    before_read = RefusalPacer.before_read

    async def recorded(self: RefusalPacer) -> None:
        pauses.append(self.pause_s)
        await before_read(self)

    monkeypatch.setattr(node.mempool, "add_many", decided)
    monkeypatch.setattr(RefusalPacer, "before_read", recorded)
    request = api_pb2.SubmitRequest(tx=pb.SignedTx(body=b"b"))
    async with grpc.aio.insecure_channel(node.address) as channel:
        stream = api_pb2_grpc.IdentifiersStub(channel).SubmitStream()
        for _ in range(7):  # one at a time: each batch is one request, answered in turn
            await stream.write(request)
            await stream.read()
        await stream.done_writing()
    first = SUBMIT_STREAM_PACE_FIRST_S
    # the pause before each next read, after the answers so far: doubling while refused
    # for room, unchanged by another refusal, halved by an admission
    assert pauses == [0.0, first, 2 * first, 4 * first, 8 * first, 8 * first, 4 * first]


def test_the_pause_doubles_to_its_cap_and_admissions_halve_it_away() -> None:
    pacer = RefusalPacer()
    for _ in range(20):
        pacer.batch_answered([ErrorCode.LIMIT_EXCEEDED, ErrorCode.MEMPOOL_FULL])
    assert pacer.pause_s == SUBMIT_STREAM_PACE_MAX_S
    pacer.batch_answered([ErrorCode.DUPLICATE_TX, ErrorCode.INVALID_TX])  # not about room
    assert pacer.pause_s == SUBMIT_STREAM_PACE_MAX_S
    halvings = 0
    while pacer.pause_s:
        pacer.batch_answered([ErrorCode.MEMPOOL_FULL, None])  # one admitted is enough
        halvings += 1
    assert halvings == 7  # 1.0 s, halved 6 times, is 0.0156 s; the 7th is below 0.01


# ---------------------------------------------------------------------------- node processes


class NodeProcess:
    """A single-validator `spark init` home run as `python -m sparkchain.node`; it commits
    an empty block every 200 ms on its own."""

    def __init__(self, root: Path, api_max_connections: int | None = None) -> None:
        self.api_port, self.p2p_port = free_loopback_ports(2)
        argv = ["init", "--home", str(root), "--chain-id", "limits"]
        argv += ["--api-listen", f"127.0.0.1:{self.api_port}"]
        argv += ["--p2p-listen", f"127.0.0.1:{self.p2p_port}"]
        assert main(argv) == 0
        self.home = NodeHome(root)
        text = self.home.config_path.read_text(encoding="utf-8")
        text = text.replace("empty_block_interval_ms = 10000", "empty_block_interval_ms = 200")
        if api_max_connections is not None:
            text = text.replace(
                "max_connections = 1024", f"max_connections = {api_max_connections}"
            )
        self.home.config_path.write_text(text, encoding="utf-8")
        self.log_path = root / "node.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, preexec: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sparkchain.node", "--home", str(self.home.root)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
            )
        return self.process

    def status(self, channel: grpc.Channel) -> api_pb2.StatusResponse:
        answer: api_pb2.StatusResponse = api_pb2_grpc.ChainStub(channel).Status(
            api_pb2.StatusRequest(), timeout=CALL_TIMEOUT_S
        )
        return answer

    def answers(self, channel: grpc.Channel) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()
        try:
            self.status(channel)
        except grpc.RpcError:
            return False
        return True

    def wait_started(self, channel: grpc.Channel) -> None:
        until(lambda: self.answers(channel), START_TIMEOUT_S, "the node answering")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def log_events(self, event: str) -> list[dict[str, object]]:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if f'"event": "{event}"' in line]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path / "home")
    yield process
    process.stop()


def _open_files_limit(limits: tuple[int, int]) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def _sized(build: Callable[[int], bytes], size: int) -> bytes:
    """build(n) for the n that makes it exactly `size` bytes long (its length grows by one
    with n, but for the few steps where a length prefix gains a byte)."""
    n = size
    while len(build(n)) > size:
        n -= len(build(n)) - size
    data = build(n)
    assert len(data) == size
    return data


def test_an_api_request_one_byte_over_the_largest_legal_one_is_refused_unread(
    node_process: NodeProcess,
) -> None:
    node_process.start()
    with grpc.insecure_channel(f"127.0.0.1:{node_process.api_port}") as channel:
        node_process.wait_started(channel)
        submit = channel.unary_unary(
            "/spark.v1.Identifiers/Submit", request_serializer=_raw, response_deserializer=_raw
        )

        def request(body_bytes: int) -> bytes:
            tx = pb.SignedTx(body=b"b" * body_bytes, signature=bytes(64))
            return api_pb2.SubmitRequest(tx=tx).SerializeToString()

        with pytest.raises(grpc.RpcError) as refused:
            submit(_sized(request, MAX_API_REQUEST_BYTES + 1), timeout=CALL_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
        # the largest legal request gets through to the node, which judges the tx itself
        with pytest.raises(grpc.RpcError) as judged:
            submit(request(MAX_TX_BYTES), timeout=CALL_TIMEOUT_S)
        assert judged.value.code() == grpc.StatusCode.INVALID_ARGUMENT, judged.value
        assert node_process.status(channel).height >= 0


def test_a_peer_message_one_byte_over_the_largest_legal_one_is_refused_unread(
    node_process: NodeProcess,
) -> None:
    node_process.start()
    with grpc.insecure_channel(f"127.0.0.1:{node_process.api_port}") as api:
        node_process.wait_started(api)
    # the peer port takes mutual TLS only: dial it as the node itself would
    credentials = node_process.home.peer_tls().channel_credentials()
    override = [("grpc.ssl_target_name_override", PEER_SERVER_NAME)]
    address = f"127.0.0.1:{node_process.p2p_port}"
    with grpc.secure_channel(address, credentials, options=override) as channel:
        connect = channel.stream_stream(
            "/spark.v1.Peer/Connect", request_serializer=_raw, response_deserializer=_raw
        )

        def message(body_bytes: int) -> bytes:
            batch = peer_pb2.TxBatch(txs=[pb.SignedTx(body=b"b" * body_bytes)])
            return peer_pb2.PeerMessage(txs=batch).SerializeToString()

        too_large = _sized(message, MAX_PEER_MESSAGE_BYTES + 1)
        with pytest.raises(grpc.RpcError) as refused:
            for _ in connect(iter([too_large]), timeout=CALL_TIMEOUT_S):
                pass
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value


def test_start_raises_the_open_files_soft_limit_to_the_hard_limit(
    node_process: NodeProcess,
) -> None:
    process = node_process.start(_open_files_limit((256, 4096)))
    with grpc.insecure_channel(f"127.0.0.1:{node_process.api_port}") as channel:
        node_process.wait_started(channel)
    limits = Path(f"/proc/{process.pid}/limits").read_text(encoding="ascii")
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert line.split()[3:5] == ["4096", "4096"], line
    (started,) = node_process.log_events("started")
    assert started["open_files_limit_before"] == 256
    assert started["open_files_limit"] == 4096


def test_a_node_whose_open_files_limit_cannot_cover_leveldb_and_the_reserve_does_not_start(
    node_process: NodeProcess,
) -> None:
    too_few = LEVELDB_MAX_OPEN_FILES + RESERVED_DESCRIPTORS
    process = node_process.start(_open_files_limit((too_few, too_few)))
    assert process.wait(timeout=START_TIMEOUT_S) == 1
    log = node_process.log()
    assert "error: INVALID_CONFIG: the open-files limit is" in log, log


def test_connections_beyond_the_cap_are_closed_while_the_validator_keeps_signing(
    tmp_path: Path,
) -> None:
    cap = 4
    node = NodeProcess(tmp_path / "home", api_max_connections=cap)
    node.start()
    held: list[socket.socket] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{node.api_port}") as channel:
            node.wait_started(channel)
            for _ in range(4 * cap):
                held.append(socket.create_connection(("127.0.0.1", node.api_port), timeout=5))
            time.sleep(0.5)
            closed = 0
            for connection in held:
                connection.settimeout(5)
                try:
                    while connection.recv(65536):  # the server's HTTP/2 settings, if open
                        connection.settimeout(0.2)
                except TimeoutError:
                    continue  # still open: the server waits for our preface
                except ConnectionResetError:
                    pass
                closed += 1
            # our channel holds one connection; the others beyond the cap were closed
            assert closed >= len(held) - (cap - 1), closed
            height = node.status(channel).height
            until(  # ~200 ms per empty block
                lambda: node.status(channel).height >= height + 3,
                START_TIMEOUT_S,
                "three more blocks",
            )
        (started,) = node.log_events("started")
        assert started["api_max_connections"] == cap
    finally:
        for connection in held:
            connection.close()
        node.stop()
