"""The harness of issue 10's attacks (bench/attack.py): a 4-validator + 1-observer
testnet of real processes on loopback, a workload that registers identifiers through node1
and records each commit latency, and `measure()`, which runs the workload unattacked (the
same run's baseline) and then during one attack.

What an attacker holds is read from outside, as an operator would: the mempool size from
Chain.Status, a node's RSS and sockets from /proc/<pid>.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc

from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node import keystore, launcher
from sparkchain.node.config import dial_address
from sparkchain.node.home import NodeHome, init_testnet
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.proto import api_pb2, api_pb2_grpc

WORKLOAD_PREFIX = "88"  # the root key registers the workload's identifiers here
ATTACKER_PREFIX = "66"  # owned by the attacker's key, so its txs are valid
WORKLOAD_WORKERS = 4  # Submit calls the workload keeps in flight
SUBMIT_TIMEOUT_S = 60.0
RSS_SAMPLE_INTERVAL_S = 0.05

_Made = TypeVar("_Made")


@dataclass(frozen=True)
class Sizes:
    seconds: float  # how long each attack (and each baseline) runs
    batch_bytes: int  # attack 1: one RegisterBatch of about this size
    signer_txs: int  # attack 2: small txs from one signer
    peer_junk_calls: int  # attack 2: junk sent to the validators' peer ports
    watch_streams: int  # attack 3
    resolve_calls: int  # attack 4: concurrent Resolve calls ...
    resolve_bytes: int  # ... of this size each
    idle_connections: int  # attack 5
    malformed_calls: int  # the low ones


@dataclass(frozen=True)
class Bound:
    held: bool
    measure: str  # what the attacker got, for the table


@dataclass(frozen=True)
class Outcome:
    attack: str
    baseline_p99_ms: float
    attacked_p99_ms: float
    commits_during_attack: int
    bound: Bound

    @property
    def ratio(self) -> float:
        return self.attacked_p99_ms / self.baseline_p99_ms if self.baseline_p99_ms else 0.0


# ---- the network under attack ----


class Network:
    """A testnet directory written by `init_testnet` (4 validators + 1 observer here)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.homes = {
            p.name: NodeHome(p) for p in sorted(directory.iterdir()) if (p / "config.toml").exists()
        }
        self.root_key_path = directory / "keys" / "root.pem"
        self.root_key = keystore.read_key_file(self.root_key_path)
        self.attacker_key = SigningKey.from_seed(b"attacker".ljust(32, b"\0"))
        self.chain_id = next(iter(self.homes.values())).genesis().chain_id

    def api(self, name: str) -> str:
        return dial_address(self.homes[name].config().api.listen)

    def p2p(self, name: str) -> str:
        return dial_address(self.homes[name].config().p2p.listen)

    def validators(self) -> list[str]:
        return [n for n, h in self.homes.items() if h.config().node.role == "validator"]

    def pid(self, name: str) -> int | None:
        return launcher.running_pid(self.homes[name])

    def all_alive(self) -> bool:
        return all(self.pid(name) is not None for name in self.homes)

    def builder(self, key: SigningKey, seed: int) -> TxBuilder:
        return TxBuilder(self.chain_id, key, random.Random(seed))


def init_network(
    directory: Path, *, mempool_max_txs: int | None = None, api_max_connections: int | None = None
) -> Network:
    """Write a 4+1 testnet; optionally with smaller limits than the defaults, so that
    scaled-down attacks reach them."""
    init_testnet(directory, 4, observers=1)
    net = Network(directory)
    for home in net.homes.values():
        text = home.config_path.read_text()
        if mempool_max_txs is not None:
            text = re.sub(r"(?m)^max_txs = \d+$", f"max_txs = {mempool_max_txs}", text)
        if api_max_connections is not None:
            text = re.sub(
                r"(?m)^max_connections = \d+$", f"max_connections = {api_max_connections}", text
            )
        home.config_path.write_text(text)
    return net


def start_network(net: Network) -> None:
    """Start every node and create the workload's and the attacker's prefixes."""
    launcher.start_nodes(list(net.homes.values()))
    root = net.builder(net.root_key, 1)
    attacker_bid = bid_from_public_key(net.attacker_key.public_key)
    with grpc.insecure_channel(net.api("node1")) as channel:
        stub = api_pb2_grpc.IdentifiersStub(channel)
        for prefix, owner in (
            (WORKLOAD_PREFIX, bid_from_public_key(net.root_key.public_key)),
            (ATTACKER_PREFIX, attacker_bid),
        ):
            tx = root.create_prefix(prefix, owner, now_ms=now_ms())
            stub.Submit(
                api_pb2.SubmitRequest(tx=tx, wait_for_commit=True), timeout=SUBMIT_TIMEOUT_S
            )


def stop_network(net: Network) -> None:
    launcher.stop_nodes(list(net.homes.values()))


def mempool_size(net: Network, name: str) -> int:
    status = launcher.query_status(net.api(name), 2.0)
    return status.mempool_size if status is not None else -1


def rss_bytes(pid: int | None) -> int:
    """A process's resident set (VmRSS in /proc/<pid>/status), 0 when gone."""
    if pid is None:
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssPeak:
    """Samples a process's RSS until stopped; the growth above the first sample."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.first = rss_bytes(pid)
        self.peak = self.first
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(RSS_SAMPLE_INTERVAL_S)

    def __enter__(self) -> RssPeak:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    @property
    def growth_bytes(self) -> int:
        return self.peak - self.first


# ---- the workload ----

Sample = tuple[float, float, bool]  # (time.monotonic() at submit, latency ms, committed)
READY = "ready"  # what the workload process sends once connected, before its samples
WORKLOAD_START_TIMEOUT_S = 30.0


async def _register_until_stopped(
    api: str, chain_id: str, key_path: Path, tag: str, stop: Event, ready: Callable[[], None]
) -> list[Sample]:
    samples: list[Sample] = []
    key = keystore.read_key_file(key_path)

    async def worker(channel: grpc.aio.Channel, index: int) -> None:
        stub = api_pb2_grpc.IdentifiersStub(channel)
        builder = TxBuilder(chain_id, key, random.Random(index))
        count = 0
        while not stop.is_set():
            identifier = f"{WORKLOAD_PREFIX}/{tag}-{index}-{count}"
            count += 1
            tx = builder.register(identifier, [value(1, "URL", "https://e.x/w")], now_ms=now_ms())
            began = time.monotonic()
            try:
                response = await stub.Submit(
                    api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=30_000),
                    timeout=SUBMIT_TIMEOUT_S,
                )
                ok = response.committed and not response.error_code
            except grpc.aio.AioRpcError:
                ok = False
            samples.append((began, (time.monotonic() - began) * 1000, ok))
            if not ok:
                await asyncio.sleep(0.05)  # a refused submit is not retried in a tight loop

    async with grpc.aio.insecure_channel(api) as channel:
        await channel.channel_ready()
        ready()
        # each worker finishes its Submit in flight (bounded by SUBMIT_TIMEOUT_S)
        await asyncio.gather(*(worker(channel, i) for i in range(WORKLOAD_WORKERS)))
    return samples


def _workload_process(
    api: str, chain_id: str, key_path: Path, tag: str, stop: Event, results: Connection
) -> None:
    samples = asyncio.run(
        _register_until_stopped(api, chain_id, key_path, tag, stop, lambda: results.send(READY))
    )
    results.send(samples)


class Workload:
    """WORKLOAD_WORKERS clients registering identifiers through node1, each waiting for the
    commit; (start time, latency ms, committed) of every Submit.

    The clients run in a process of their own, as an honest client would: in the
    attacker's process, the attacker's own work (signing 20,000 txs, serialising 79 MiB
    requests) would hold up their event loop and show as commit latency."""

    def __init__(self, net: Network, tag: str) -> None:
        self.net = net
        self.tag = tag
        self.samples: list[Sample] = []
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results, self._sending = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_workload_process,
            args=(
                net.api("node1"),
                net.chain_id,
                net.root_key_path,
                tag,
                self._stop,
                self._sending,
            ),
            daemon=True,
        )

    async def start(self) -> None:
        """Returns once the clients are connected (the baseline starts then)."""
        self._process.start()
        self._sending.close()  # the child's copy remains: its exit ends our reads (EOFError)
        ready = await asyncio.to_thread(self._results.poll, WORKLOAD_START_TIMEOUT_S)
        if not ready or self._results.recv() != READY:
            self._process.kill()
            raise RuntimeError("the workload process did not connect to node1")

    async def stop(self) -> None:
        self._stop.set()
        self.samples = await asyncio.to_thread(self._results.recv)
        await asyncio.to_thread(self._process.join, SUBMIT_TIMEOUT_S)

    def p99_ms(self, began_from: float, began_before: float) -> float:
        latencies = sorted(
            ms for began, ms, ok in self.samples if ok and began_from <= began < began_before
        )
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]

    def commits(self, finished_from: float, finished_before: float) -> int:
        return sum(
            1
            for began, ms, ok in self.samples
            if ok and finished_from <= began + ms / 1000 < finished_before
        )


@dataclass(frozen=True)
class PreparedAttack(Generic[_Made]):
    """An attack with work its attacker does before it starts (signing its txs): `measure`
    runs `prepare` before the baseline, as a remote attacker does it on its own machine and
    not on the two cores the nodes share here; `run` gets what `prepare` made. Signing
    20,000 txs takes ~1.3 CPU-seconds: done inside the attacked window it took one of the
    two cores from the nodes for the window's first seconds."""

    prepare: Callable[[Network, Sizes], _Made]
    run: Callable[[Network, Sizes, _Made], Awaitable[Bound]]

    @property
    def __name__(self) -> str:
        return self.run.__name__


AttackRun = Callable[[Network, Sizes], Awaitable[Bound]] | PreparedAttack[Any]


SETTLE_TIMEOUT_S = 180.0  # how long one attack's leftovers may take to drain
QUIET_CPU_CORES = 0.1  # all node processes together, over QUIET_WINDOW_S: the net is idle
QUIET_WINDOW_S = 1.0
QUIET_TIMEOUT_S = 30.0  # a net that never gets that quiet is measured anyway


def cpu_seconds(pid: int | None) -> float:
    """A process's CPU time so far, all its threads (LevelDB's compactions included)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def settle(net: Network, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait (bounded) until every validator's mempool is empty and the nodes are idle, so
    that what the previous attack left behind (a mempool full of one signer's txs, LevelDB
    compacting its big blocks, memory being given back) is not measured in the next
    attack's baseline or attacked window."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        sizes = await asyncio.to_thread(
            lambda: [mempool_size(net, name) for name in net.validators()]
        )
        if all(size == 0 for size in sizes):
            break
        await asyncio.sleep(0.5)
    deadline = min(deadline, time.perf_counter() + QUIET_TIMEOUT_S)
    while time.perf_counter() < deadline:
        if await nodes_cpu_cores(net, QUIET_WINDOW_S) < QUIET_CPU_CORES:
            return


async def nodes_cpu_cores(net: Network, window_s: float) -> float:
    """The cores all node processes used together over the next `window_s`."""
    pids = [net.pid(name) for name in net.homes]
    before = sum(map(cpu_seconds, pids))
    await asyncio.sleep(window_s)
    return (sum(map(cpu_seconds, pids)) - before) / window_s


def _prepared(
    net: Network, sizes: Sizes, attack: PreparedAttack[_Made]
) -> Callable[[Network, Sizes], Awaitable[Bound]]:
    made = attack.prepare(net, sizes)

    def run(net: Network, sizes: Sizes) -> Awaitable[Bound]:
        return attack.run(net, sizes, made)

    return run


async def measure(net: Network, name: str, attack: AttackRun, sizes: Sizes) -> Outcome:
    """The workload for `sizes.seconds` unattacked, then during the attack; first the
    attack is prepared (`PreparedAttack`) and the network settles from the previous one."""
    run = _prepared(net, sizes, attack) if isinstance(attack, PreparedAttack) else attack
    await settle(net)
    workload = Workload(net, f"W{now_ms()}")
    await workload.start()
    began = time.monotonic()
    try:
        await asyncio.sleep(sizes.seconds)
        attack_began = time.monotonic()
        bound = await run(net, sizes)
        attack_ended = time.monotonic()
    finally:
        await workload.stop()
    alive = net.all_alive()
    if not alive:
        bound = Bound(False, bound.measure + "; a node process died")
    return Outcome(
        name,
        workload.p99_ms(began, attack_began),
        workload.p99_ms(attack_began, attack_ended),
        workload.commits(attack_began, attack_ended),
        bound,
    )
