"""One chaos run: a 4-validator + 1-observer testnet whose peer links all go through the
fault proxy (one validator's home on a small tmpfs), the workload, the seeded schedule of
faults, then (everything healed) the progress bound and the checker.

The seed fixes the schedule and the clients' choices; the timing of real processes does not
repeat exactly, so a replay (`make chaos SEED=n DURATION=s`) runs the same faults in the
same order on the same nodes against the same kind of load, not the same interleaving.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.tx import TxBuilder, tx_id, value
from sparkchain.node.home import NodeHome
from sparkchain.node.mempool import wall_clock_ms
from sparkchain.proto import api_pb2
from tests.chaos import checker, disk
from tests.chaos.history import WRITES, History, Op
from tests.chaos.nemesis import Fault, Nemesis, make_schedule, wait_up
from tests.chaos.proxy import ProxyNet
from tests.chaos.workload import COMMIT_WAIT_MS, Workload, payload_of
from tests.helpers.cluster import Cluster, until

PREFIX = "88"  # the workload's identifiers live under it (tests/chaos/workload.py)
VALIDATORS = 4
OBSERVERS = 1
CLIENTS = 4
START_TIMEOUT_S = 120.0
PROGRESS_BOUND_S = 60.0  # after the last fault heals, the chain must commit a write within
CATCH_UP_BOUND_S = 90.0  # ... and every node must reach the same height within
READ_RETRIES = 5
MIN_GAP_S = 1.0
TIME_SLACK_MS = 2000


@dataclass
class ChaosResult:
    seed: int
    duration_s: float
    schedule: list[Fault]
    operations: int = 0
    acknowledged: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history_path: Path | None = None
    height: int = 0

    @property
    def faults(self) -> int:
        return sum(self.faults_by_kind.values())

    def summary(self) -> str:
        return (
            f"operations: {self.operations}, acknowledged: {self.acknowledged}, "
            f"faults: {self.faults}, violations: {len(self.violations)}"
        )

    def replay_text(self, short: bool = False) -> str:
        schedule = "\n".join("  " + fault.describe() for fault in self.schedule)
        how = (
            "the short schedule of tests/test_chaos.py"
            if short
            else (f"make chaos SEED={self.seed} DURATION={self.duration_s:g}")
        )
        return f"seed {self.seed}; replay: {how}\nschedule:\n{schedule}"


def run_chaos(
    seed: int,
    duration_s: float,
    workdir: Path,
    *,
    short: bool = False,
    say: Callable[[str], None] = print,
) -> ChaosResult:
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir, validators=VALIDATORS, observers=OBSERVERS).init()
    validators = cluster.validator_names()
    observers = [name for name in cluster.nodes if name not in validators]
    everyone = validators + observers
    proxies = ProxyNet(seed)
    disk_node: str | None = random.Random(seed).choice(validators)
    disk_home: Path | None = cluster.nodes[disk_node].home
    notes = []
    try:
        assert disk_home is not None
        disk.mount_home(disk_home, disk_size_mb := 96)
        notes.append(f"disk: {disk_node}'s home on a {disk_size_mb} MiB tmpfs")
    except disk.DiskUnavailable as error:
        notes.append(f"disk: no full-disk fault in this run: cannot mount a tmpfs ({error})")
        disk_node = disk_home = None
    schedule = make_schedule(seed, duration_s, validators, observers, disk_node, short=short)
    result = ChaosResult(seed, duration_s, schedule, notes=notes)
    say(result.replay_text(short))
    nemesis = Nemesis(cluster, proxies, disk_home)
    history = History(workdir / "history.jsonl")
    result.history_path = history.path
    workload: Workload | None = None
    try:
        _route_peers_through(cluster, proxies, everyone)
        began = time.monotonic()
        cluster.spark_ok("testnet", "start", "--dir", cluster.net)  # every node at once
        for name in everyone:
            cluster.wait_height(name, 1, START_TIMEOUT_S)
        chain_id = cluster.genesis_chain_id()
        root_bid = bid_from_public_key(cluster.root_key().public_key)
        setup = TxBuilder(chain_id, cluster.root_key(), random.Random(seed))
        cluster.submit(validators[0], setup.create_prefix(PREFIX, root_bid, now_ms=wall_clock_ms()))
        apis = {name: info.api for name, info in cluster.nodes.items()}
        workload = Workload(CLIENTS, seed, chain_id, cluster.root_key(), apis, history)
        workload.start()
        started = time.monotonic()
        say(f"[{started - began:6.1f} s] network up at height 1, prefix {PREFIX} created")
        healed = started
        for done, fault in enumerate(schedule):
            if not short and time.monotonic() - started > duration_s:
                # restarts on a loaded machine ran late: the run keeps its bound
                result.notes.append(
                    f"schedule: {len(schedule) - done} faults not run, past the duration"
                )
                break
            # on a loaded machine a restart may run late: a fault still lasts its duration
            # and the quiet gap after the previous one is kept
            _sleep_until(max(started + fault.at_s, healed + MIN_GAP_S))
            say(f"[{time.monotonic() - started:6.1f} s] {fault.kind} {fault.describe()}")
            nemesis.apply(fault)
            result.faults_by_kind[fault.kind] += 1
            nemesis.during(fault, time.monotonic() + fault.duration_s)
            nemesis.heal(fault)
            for name in fault.targets:
                wait_up(cluster, name)
            healed = time.monotonic()
        if not short:
            _sleep_until(started + duration_s)
        nemesis.heal_everything()
        say(f"[{time.monotonic() - started:6.1f} s] healed; checking progress")
        result.violations += _progress_after_heal(cluster, validators, history, seed)
        workload.finish()
        workload = None
        history.close()
        result.violations += _all_in_step(cluster, everyone)
        result.violations += nemesis.violations
        result.notes += nemesis.notes
        ops = history.ops
        say(f"[{time.monotonic() - started:6.1f} s] every node in step; reading them back")
        with ThreadPoolExecutor(len(everyone)) as readers:
            views = list(readers.map(lambda name: _view(cluster, name, ops), everyone))
        result.height = max(view.height for view in views)
        bounds = checker.TimeBounds(
            earliest_ms=json.loads(Path(cluster.genesis_file).read_text())["genesis_time_ms"],
            latest_ms=wall_clock_ms() + nemesis.max_forward_skew_ms + TIME_SLACK_MS,
        )
        result.violations += checker.check(ops, views, root_bid, bounds)
        result.operations = len(ops)
        result.acknowledged = sum(1 for op in ops if op.f in WRITES and op.outcome == "ok")
    finally:
        if workload is not None:
            workload.finish()
            history.close()
        nemesis.heal_everything()
        cluster.stop_all()
        proxies.close()
        if disk_home is not None:  # its log would go with the tmpfs
            log_path = NodeHome(disk_home).log_path
            if log_path.exists():
                shutil.copy(log_path, workdir / f"{disk_node}.log")
        disk.unmount_all()
    return result


def _route_peers_through(cluster: Cluster, proxies: ProxyNet, names: list[str]) -> None:
    """Every node dials every peer through its own proxy port for that link."""
    by_address = {cluster.peer_address(name): name for name in names}
    for name in names:
        peers = NodeHome(cluster.nodes[name].home).config().p2p.peers
        routed = []
        for address in peers:
            target = by_address[address]
            routed.append(proxies.add_link(name, target, address))
        cluster.set_peers(name, routed)


def _sleep_until(moment: float) -> None:
    remaining = moment - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def _progress_after_heal(
    cluster: Cluster, validators: list[str], history: History, seed: int
) -> list[str]:
    """A write through a validator commits within PROGRESS_BOUND_S of the last heal."""
    healed = time.monotonic()
    builder = TxBuilder(cluster.genesis_chain_id(), cluster.root_key(), random.Random(seed))
    attempt = 0
    while time.monotonic() - healed < PROGRESS_BOUND_S:
        node = validators[attempt % len(validators)]
        attempt += 1
        identifier = f"88/CHAOS-S{seed}-PROBE-{attempt}"
        payload = f"{identifier}#0"
        tx = builder.register(
            identifier,
            [value(1, "URL", "https://chaos.example/" + payload)],
            now_ms=wall_clock_ms(),
            lifetime_ms=10 * 60 * 1000,
        )
        op = history.invoke(
            Op(0, -1, node, "register", identifier, payload=payload, tx_id=tx_id(tx).hex())
        )
        left_ms = int((PROGRESS_BOUND_S - (time.monotonic() - healed)) * 1000)
        try:
            response = cluster.submit(node, tx, timeout_ms=max(1000, min(COMMIT_WAIT_MS, left_ms)))
        except grpc.RpcError as error:
            code = error.code().name  # type: ignore[attr-defined]
            history.complete(op, "info", code=code)
            time.sleep(0.5)
            continue
        if response.committed:
            history.complete(op, "ok", height=response.height)
            return []
        history.complete(op, "info", code="NOT_COMMITTED")
    return [f"progress: no write committed within {PROGRESS_BOUND_S:g} s after the last heal"]


def _all_in_step(cluster: Cluster, names: list[str]) -> list[str]:
    deadline = time.monotonic() + CATCH_UP_BOUND_S
    target = max(cluster.height(name) for name in names)
    behind: dict[str, int] = {}
    for name in names:
        left = max(1.0, deadline - time.monotonic())
        try:
            until(lambda n=name: cluster.height(n) >= target, left, f"{name} at {target}")  # type: ignore[misc]
        except AssertionError:
            behind[name] = cluster.height(name)
    return [
        f"catch-up: {name} at height {height}, {CATCH_UP_BOUND_S:g} s after the others "
        f"reached {target}"
        for name, height in behind.items()
    ]


def _retrying(call: Callable[[], object]) -> object:
    for attempt in range(READ_RETRIES):
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise
            if attempt == READ_RETRIES - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _view(cluster: Cluster, name: str, ops: list[Op]) -> checker.NodeView:
    """What one node holds: every block, where each write's tx is, every record written."""
    chain = cluster.chain(name)
    identifiers = cluster.identifiers(name)
    height = cluster.height(name)
    view = checker.NodeView(name, height)
    for h in range(1, height + 1):
        block = _retrying(
            lambda h=h: chain.GetBlock(api_pb2.GetBlockRequest(height=h), timeout=10)  # type: ignore[misc]
        )
        assert isinstance(block, api_pb2.GetBlockResponse)
        view.blocks[h] = checker.BlockView(
            block.block_hash.hex(), block.header.state_root.hex(), block.header.time_ms
        )
    for op in ops:
        if op.f not in WRITES:
            continue
        try:
            found = _retrying(
                lambda op=op: chain.GetTx(  # type: ignore[misc]
                    api_pb2.GetTxRequest(tx_id=bytes.fromhex(op.tx_id)), timeout=10
                )
            )
            assert isinstance(found, api_pb2.GetTxResponse)
            view.txs[op.tx_id] = found.height
        except grpc.RpcError as error:
            _absent_or_raise(error)
            view.txs[op.tx_id] = None
        if op.identifier in view.records:
            continue
        try:
            answer = _retrying(
                lambda op=op: identifiers.Resolve(  # type: ignore[misc]
                    api_pb2.ResolveRequest(identifier=op.identifier), timeout=10
                )
            )
            assert isinstance(answer, api_pb2.ResolveResponse)
            view.records[op.identifier] = checker.RecordView(
                payload_of(answer.record), answer.record.owner
            )
        except grpc.RpcError as error:
            _absent_or_raise(error)
            view.records[op.identifier] = None
    return view


def _absent_or_raise(error: grpc.RpcError) -> None:
    """NOT_FOUND is an answer (absent); a node that cannot answer fails the run loudly."""
    if error.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
        raise error
