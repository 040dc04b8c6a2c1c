"""Issue 10's attacks on a hostile network, rerun against real node processes.

Each attack is an ordinary gRPC client (or raw sockets) against a running 4-validator +
1-observer testnet on loopback, a function `(testnet, sizes) -> Bound`, bounded in count and
in time. `bench.attack_net.measure()` runs a workload that registers identifiers through
node1 and records each commit latency, first unattacked (the baseline), then while one
attack runs; it returns both p99s, the workload's commits during the attack and whether the
attack's bound held (refusals, mempool size from Status, node RSS from /proc).

`python -m bench.attack` (`make attack`) runs every attack at the sizes of the outside
review against a fresh testnet, DEFAULT_RUNS times each, and prints a table of medians
with every run's ratio; tests/test_attacks.py runs them scaled
down against small configured limits. Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from bench.attack_net import (
    ATTACKER_PREFIX,
    SUBMIT_TIMEOUT_S,
    WORKLOAD_WORKERS,
    AttackRun,
    Bound,
    Network,
    Outcome,
    PreparedAttack,
    RssPeak,
    Sizes,
    init_network,
    measure,
    mempool_size,
    start_network,
    stop_network,
)
from bench.report import print_table, ratio
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.limits import (
    MAX_API_REQUEST_BYTES,
    MAX_BATCH_ITEMS,
    MAX_WATCH_STREAMS_PER_CLIENT,
    MEMPOOL_SIGNER_SHARE_PERCENT,
)
from sparkchain.identifiers.tx import value
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.node.peer_handshake import LocalPeer, hello, new_nonce
from sparkchain.node.tls import PEER_SERVER_NAME, TlsAuthority, issue_node_certificate
from sparkchain.proto import api_pb2, api_pb2_grpc, peer_pb2, peer_pb2_grpc
from sparkchain.proto import types_pb2 as pb

WATCH_STREAMS_PER_CHANNEL = 100  # HTTP/2 streams the attacker opens on one connection
BIG_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]

# the sizes of the outside review (issue 10)
REVIEW_SIZES = Sizes(
    seconds=10.0,
    batch_bytes=3_000_000,
    signer_txs=20_000,
    peer_junk_calls=2000,
    watch_streams=4000,
    resolve_calls=12,
    resolve_bytes=79 * 1024 * 1024,
    idle_connections=1100,
    malformed_calls=2000,
)


# ---- the attacks ----


async def _until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))


async def big_batch(net: Network, sizes: Sizes) -> Bound:
    """1. Valid RegisterBatch txs of `batch_bytes`, one after another: each one admitted
    must commit. While the workload's signer is active the attacker's signer is admitted
    at its contended byte rate (node/signer_rates.py): the rest is refused at once with
    MEMPOOL_FULL, never admitted and then lost."""
    deadline = time.perf_counter() + sizes.seconds
    items = MAX_BATCH_ITEMS
    data = "x" * max(1, sizes.batch_bytes // items - 40)
    builder = net.builder(net.attacker_key, now_ms())
    tag = f"B{now_ms()}"  # new identifiers in every run against the same network
    committed = rate_refused = 0
    # why, for each batch neither committed nor refused for its signer's rate: a valid
    # batch is one or the other (an admitted one lost, or a refusal by the rules, is a bug)
    lost: dict[str, int] = {}
    async with grpc.aio.insecure_channel(net.api("node2"), options=BIG_CHANNEL_OPTIONS) as ch:
        stub = api_pb2_grpc.IdentifiersStub(ch)
        batch = 0
        while time.perf_counter() < deadline:
            tx = builder.register_batch(
                ATTACKER_PREFIX,
                [(f"{tag}-{batch}-{i}", [value(1, "DATA", data)]) for i in range(items)],
                now_ms=now_ms(),
            )
            batch += 1
            try:
                response = await stub.Submit(
                    api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=60_000),
                    timeout=SUBMIT_TIMEOUT_S + 5,
                )
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    rate_refused += 1
                else:
                    lost[error.code().name] = lost.get(error.code().name, 0) + 1
                continue
            if response.committed and not response.error_code:
                committed += 1
            elif response.error_code == "MEMPOOL_FULL" and not response.committed:
                rate_refused += 1
            else:
                why = response.error_code or "not committed"
                lost[why] = lost.get(why, 0) + 1
    size_mb = len(tx.SerializeToString()) / 1e6
    return Bound(
        committed > 0 and not lost,
        f"{committed} batches of {size_mb:.1f} MB committed, {rate_refused} refused at "
        f"admission (MEMPOOL_FULL), {sum(lost.values())} neither" + (f" {lost}" if lost else ""),
    )


async def unlisted_observer(net: Network, sizes: Sizes) -> Bound:
    """2a. A stranger holding a certificate of the network's CA (bound to its own key, which
    no `[p2p] observers` lists) says hello as an observer and sends junk txs: every link is
    refused (PERMISSION_DENIED) without one message from the node."""
    deadline = time.perf_counter() + sizes.seconds
    keys = net.dir / "keys"
    authority = TlsAuthority(
        (keys / "tls-ca-key.pem").read_bytes(), (keys / "tls-ca.pem").read_bytes()
    )
    stranger = SigningKey.from_seed(b"stranger".ljust(32, b"\0"))
    tls = issue_node_certificate(authority, "stranger", stranger.public_key)
    local = LocalPeer(net.chain_id, stranger, observer=True, validators=frozenset())
    junk = random.Random(105)
    batch = peer_pb2.PeerMessage(
        txs=peer_pb2.TxBatch(
            txs=[
                pb.SignedTx(body=junk.randbytes(200), signature=junk.randbytes(64))
                for _ in range(100)
            ]
        )
    )
    options = [("grpc.ssl_target_name_override", PEER_SERVER_NAME)]
    names = net.validators()
    answered = ended_ok = sent = 0
    ends: dict[str, int] = {}

    async def messages() -> AsyncIterator[peer_pb2.PeerMessage]:
        yield peer_pb2.PeerMessage(handshake=hello(local, new_nonce(), 0))
        yield batch

    while sent < sizes.peer_junk_calls and time.perf_counter() < deadline:
        address = net.p2p(names[sent % len(names)])
        sent += 1
        async with grpc.aio.secure_channel(
            address, tls.channel_credentials(), options=options
        ) as ch:
            call = peer_pb2_grpc.PeerStub(ch).Connect(messages(), timeout=10)
            try:
                async for _ in call:
                    answered += 1
                ended_ok += 1
            except grpc.aio.AioRpcError as error:
                # the node's refusal is PERMISSION_DENIED; the client may instead see its own
                # write of the junk batch fail when the refusal closed the stream under it
                key = error.code().name
                ends[key] = ends.get(key, 0) + 1
    await _until(deadline)
    return Bound(
        answered == 0 and ended_ok == 0,
        f"{sent} links, {answered} answers, {ended_ok} ended OK; refusals: {ends or 'none'}",
    )


def _signer_flood_txs(net: Network, sizes: Sizes) -> list[pb.SignedTx]:
    """Attack 2b's txs, signed before the attack (PreparedAttack)."""
    builder = net.builder(net.attacker_key, 102)
    stamp = now_ms()
    tag = f"F{stamp}"
    return [
        builder.register(
            f"{ATTACKER_PREFIX}/{tag}-{i}", [value(1, "URL", "https://e.x/f")], now_ms=stamp
        )
        for i in range(sizes.signer_txs)
    ]


async def _signer_flood(net: Network, sizes: Sizes, txs: list[pb.SignedTx]) -> Bound:
    """2b. Many small valid txs from one signer into node1's mempool: they hold at most the
    signer's share, whatever the count (the rest is refused with MEMPOOL_FULL)."""
    deadline = time.perf_counter() + sizes.seconds
    max_txs = net.homes["node1"].config().mempool.max_txs
    share = max_txs * MEMPOOL_SIGNER_SHARE_PERCENT // 100
    peak = 0
    admitted = refused = 0

    async def requests() -> AsyncIterator[api_pb2.SubmitRequest]:
        for tx in txs:
            if time.perf_counter() > deadline:
                return
            yield api_pb2.SubmitRequest(tx=tx, wait_for_commit=False)

    async def watch_mempool() -> None:
        nonlocal peak
        while True:
            peak = max(peak, await asyncio.to_thread(mempool_size, net, "node1"))
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch_mempool())
    try:
        async with grpc.aio.insecure_channel(net.api("node1")) as ch:
            stub = api_pb2_grpc.IdentifiersStub(ch)
            async for response in stub.SubmitStream(requests()):
                if response.error_code:
                    refused += 1
                else:
                    admitted += 1
        await _until(deadline)
    finally:
        watcher.cancel()
    # the workload's own txs wait there too, WORKLOAD_WORKERS at most
    held = peak <= share + WORKLOAD_WORKERS
    return Bound(
        held,
        f"mempool peak {peak} (signer share {share}); {admitted} admitted, {refused} refused",
    )


signer_flood = PreparedAttack(_signer_flood_txs, _signer_flood)


def _peer_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address)


async def peer_junk(net: Network, sizes: Sizes) -> Bound:
    """2a. Junk txs at the validators' peer ports in plaintext: every call refused, the
    mempools unchanged by it."""
    deadline = time.perf_counter() + sizes.seconds
    refused = answered = 0
    junk = random.Random(103).randbytes(4096)
    names = net.validators()
    sent = 0
    while sent < sizes.peer_junk_calls and time.perf_counter() < deadline:
        name = names[sent % len(names)]
        async with _peer_channel(net.p2p(name)) as ch:
            calls = []
            for method in ("/spark.v1.Peer/Connect", "/spark.v1.Peer/GetBlocks"):
                rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = ch.unary_unary(
                    method, request_serializer=None, response_deserializer=None
                )
                calls.append(rpc(junk, timeout=5))
            for result in await asyncio.gather(*calls, return_exceptions=True):
                sent += 1
                if isinstance(result, grpc.aio.AioRpcError):
                    refused += 1
                else:
                    answered += 1
    await _until(deadline)
    return Bound(answered == 0, f"{refused} of {sent} plaintext peer calls refused")


async def watch_flood(net: Network, sizes: Sizes) -> Bound:
    """3. Watch streams that are never read, from one client, held for the whole attack: at
    its end at most MAX_WATCH_STREAMS_PER_CLIENT are still open. (Counted at the end, not
    sampled on the way: right after the calls are made, those the node has not refused yet
    are still waiting in the client.)"""
    deadline = time.perf_counter() + sizes.seconds
    channel_count = -(-sizes.watch_streams // WATCH_STREAMS_PER_CHANNEL)
    channels = [grpc.aio.insecure_channel(net.api("node1")) for _ in range(channel_count)]
    calls = []
    ended: dict[str, int] = {}
    with RssPeak(net.pid("node1")) as rss:
        try:
            for index in range(sizes.watch_streams):
                stub = api_pb2_grpc.IdentifiersStub(channels[index % channel_count])
                calls.append(stub.Watch(api_pb2.WatchRequest()))
            await _until(deadline)
            still_open = sum(1 for call in calls if not call.done())
            for call in calls:
                if call.done():
                    code = (await call.code()).name
                    ended[code] = ended.get(code, 0) + 1
        finally:
            for call in calls:
                call.cancel()
            for ch in channels:
                await ch.close()
    return Bound(
        still_open <= MAX_WATCH_STREAMS_PER_CLIENT,
        f"{still_open} of {sizes.watch_streams} streams open at the end (ended: {ended}); "
        f"node1 RSS +{rss.growth_bytes / 2**20:.0f} MiB",
    )


async def huge_resolve(net: Network, sizes: Sizes) -> Bound:
    """4. Rounds of `resolve_calls` concurrent Resolve calls of `resolve_bytes` each: refused
    over the receive limit, so the node never holds them whole."""
    deadline = time.perf_counter() + sizes.seconds
    request = api_pb2.ResolveRequest(identifier="a" * sizes.resolve_bytes).SerializeToString()
    refused = answered = 0
    with RssPeak(net.pid("node1")) as rss:
        async with grpc.aio.insecure_channel(net.api("node1"), options=BIG_CHANNEL_OPTIONS) as ch:
            rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = ch.unary_unary(
                "/spark.v1.Identifiers/Resolve",
                request_serializer=None,
                response_deserializer=None,
            )
            while time.perf_counter() < deadline:
                calls = [rpc(request, timeout=30) for _ in range(sizes.resolve_calls)]
                for result in await asyncio.gather(*calls, return_exceptions=True):
                    if (
                        isinstance(result, grpc.aio.AioRpcError)
                        and result.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    ):
                        refused += 1
                    else:
                        answered += 1
    # the node may read up to the receive limit of each call before refusing it
    allowed = sizes.resolve_calls * min(sizes.resolve_bytes, MAX_API_REQUEST_BYTES) + 64 * 2**20
    held = answered == 0 and rss.growth_bytes <= allowed
    return Bound(
        held,
        f"{refused} of {refused + answered} refused; node1 RSS +{rss.growth_bytes / 2**20:.0f} MiB",
    )


def _raise_open_files_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _api_sockets(pid: int | None) -> int:
    """Sockets the node process holds (its API, peer and internal ones)."""
    if pid is None:
        return 0
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    return count


async def idle_connections(net: Network, sizes: Sizes) -> Bound:
    """5. TCP connections to node1's API that never send a byte: at most
    `[api] max_connections` stay open."""
    deadline = time.perf_counter() + sizes.seconds
    _raise_open_files_limit(sizes.idle_connections + 1024)
    host, port = net.api("node1").rsplit(":", 1)
    cap = net.homes["node1"].config().api.max_connections
    pid = net.pid("node1")
    sockets_before = _api_sockets(pid)
    opened: list[socket.socket] = []
    most_open = most_node_sockets = 0
    try:
        for _ in range(sizes.idle_connections):
            if time.perf_counter() > deadline:
                break
            try:
                opened.append(socket.create_connection((host, int(port)), timeout=2))
            except OSError:
                continue
        while time.perf_counter() < deadline:
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.perf_counter())))
            most_open = max(most_open, sum(1 for s in opened if _still_open(s)))
            most_node_sockets = max(most_node_sockets, _api_sockets(pid))
    finally:
        for sock in opened:
            sock.close()
    return Bound(
        most_open <= cap,
        f"{most_open} of {sizes.idle_connections} held open (cap {cap}); "
        f"node1 sockets {sockets_before} -> {most_node_sockets}",
    )


MALFORMED_METHODS = (
    "/spark.v1.Identifiers/Submit",
    "/spark.v1.Identifiers/Resolve",
    "/spark.v1.Identifiers/History",
    "/spark.v1.Identifiers/List",
    "/spark.v1.Identifiers/PrefixInfo",
    "/spark.v1.Chain/Status",
    "/spark.v1.Chain/GetBlock",
    "/spark.v1.Chain/GetTx",
)


async def malformed(net: Network, sizes: Sizes) -> Bound:
    """The low ones: bytes that are not protobuf, and well-formed requests with huge hashes
    and identifiers. Every one gets an answer that is not INTERNAL or UNKNOWN."""
    deadline = time.perf_counter() + sizes.seconds
    junk = random.Random(104)
    huge = b"\x01" * (1024 * 1024)
    well_formed = [
        ("/spark.v1.Chain/GetTx", api_pb2.GetTxRequest(tx_id=huge).SerializeToString()),
        ("/spark.v1.Chain/GetBlock", api_pb2.GetBlockRequest(hash=huge).SerializeToString()),
        (
            "/spark.v1.Identifiers/Resolve",
            api_pb2.ResolveRequest(identifier="8" * len(huge)).SerializeToString(),
        ),
    ]
    bad: dict[str, int] = {}
    sent = 0
    async with grpc.aio.insecure_channel(net.api("node2"), options=BIG_CHANNEL_OPTIONS) as ch:
        while sent < sizes.malformed_calls and time.perf_counter() < deadline:
            if sent % 4 == 3:
                method, payload = well_formed[sent % len(well_formed)]
            else:
                method = MALFORMED_METHODS[sent % len(MALFORMED_METHODS)]
                payload = b"\xff" + junk.randbytes(junk.randrange(1, 512))
            rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = ch.unary_unary(
                method, request_serializer=None, response_deserializer=None
            )
            sent += 1
            try:
                await rpc(payload, timeout=10)
            except grpc.aio.AioRpcError as error:
                if error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    bad[method] = bad.get(method, 0) + 1
    await _until(deadline)
    return Bound(not bad, f"{sent} sent; INTERNAL/UNKNOWN answers: {bad or 'none'}")


ATTACKS: dict[str, AttackRun] = {
    "1 valid big RegisterBatch": big_batch,
    "2a junk at the peer ports (plaintext)": peer_junk,
    "2a junk from an unlisted observer (CA cert)": unlisted_observer,
    "2b small txs from one signer": signer_flood,
    "3 Watch streams never read": watch_flood,
    "4 concurrent huge Resolve calls": huge_resolve,
    "5 idle connections": idle_connections,
    "6 malformed protobuf, huge hashes": malformed,
}


# ---- make attack ----

DEFAULT_RUNS = 3  # each attack's figure is the median of this many runs, each printed


async def run_all(
    net: Network, sizes: Sizes, names: Sequence[str] = (), runs: int = 1
) -> dict[str, list[Outcome]]:
    """Every attack (or those whose name holds one of `names`) `runs` times, in rounds: a
    slow spell of this shared machine then spreads over the attacks instead of hitting
    every run of one."""
    chosen = {
        name: attack
        for name, attack in ATTACKS.items()
        if not names or any(n in name for n in names)
    }
    outcomes: dict[str, list[Outcome]] = {name: [] for name in chosen}
    for round_ in range(1, runs + 1):
        for name, attack in chosen.items():
            outcome = await measure(net, name, attack, sizes)
            print(
                f"run {round_}/{runs} {name}: p99 {outcome.baseline_p99_ms:.0f} -> "
                f"{outcome.attacked_p99_ms:.0f} ms ({ratio(outcome.ratio)}), "
                f"{outcome.commits_during_attack} commits, {outcome.bound.measure}",
                file=sys.stderr,
            )
            outcomes[name].append(outcome)
    return outcomes


def median_ratio(runs: Sequence[Outcome]) -> float:
    """The median of the runs' ratios (each run compared with its own baseline)."""
    return statistics.median(o.ratio for o in runs)


def report(outcomes: dict[str, list[Outcome]], sizes: Sizes) -> None:
    runs = max(len(r) for r in outcomes.values())
    print_table(
        f"Attacks on a 4+1 testnet on loopback, {sizes.seconds:g} s each after a "
        f"{sizes.seconds:g} s baseline, {runs} run(s) each, {os.cpu_count()} cores (attacker "
        "on the same machine)",
        [
            "attack",
            "baseline p99",
            "attacked p99",
            "ratio",
            "each run",
            "commits during",
            "bound held?",
            "attacker got (last run)",
        ],
        [
            [
                name,
                f"{statistics.median(o.baseline_p99_ms for o in rs):,.0f} ms",
                f"{statistics.median(o.attacked_p99_ms for o in rs):,.0f} ms",
                ratio(median_ratio(rs)),
                " ".join(f"{o.ratio:.2f}" for o in rs),
                f"{min(o.commits_during_attack for o in rs):,}",
                "yes" if all(o.bound.held for o in rs) else "NO",
                rs[-1].bound.measure,
            ]
            for name, rs in outcomes.items()
        ],
        goals=[("≤ 2x", median_ratio(rs) <= 2) for rs in outcomes.values()],
        caption="commit latency of a workload registering through node1 (4 Submits in "
        "flight, each waiting for its commit); goal: attacked p99 at most 2x the same run's "
        "baseline. p99s and ratio: medians over the runs; commits during: the fewest",
    )


def chain_stopped(runs: Sequence[Outcome]) -> bool:
    return any(o.commits_during_attack == 0 for o in runs)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.attack [--runs N] [NAME-PART ...]`: exit status 1 when an attack
    stopped the chain from committing in any run (a broken bound or a slower p99 shows in
    the table)."""
    parser = argparse.ArgumentParser(prog="python -m bench.attack", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME-PART", help="attacks to run")
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"runs of each attack; the table gives their medians (default {DEFAULT_RUNS})",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="spark-attack-") as tmp:
        net = init_network(Path(tmp) / "net")
        try:
            start_network(net)
            outcomes = asyncio.run(run_all(net, REVIEW_SIZES, args.names, args.runs))
        finally:
            stop_network(net)
    report(outcomes, REVIEW_SIZES)
    stopped = [name for name, runs in outcomes.items() if chain_stopped(runs)]
    if stopped:
        print(f"the chain stopped committing during: {', '.join(stopped)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
