"""One node process (DESIGN §7): the ledger, mempool, commit bus, consensus driver (on
validators), peer links, block sync and the public gRPC API, on one asyncio loop (uvloop
when installed). SIGINT or SIGTERM stops it gracefully: the API stops taking requests,
peers and timers stop, and the ledger is closed after the last commit."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.limits import (
    API_HTTP2_WINDOW_BYTES,
    MAX_API_CONCURRENT_RPCS,
    MAX_API_MESSAGE_BYTES,
    MAX_API_REQUEST_BYTES,
)
from sparkchain.ledger.genesis import Genesis
from sparkchain.node.api import SERVICE_NAMES, add_services
from sparkchain.node.clock import node_clock
from sparkchain.node.commit import Committer
from sparkchain.node.config import NodeConfig, StorageConfig, dial_address, split_address
from sparkchain.node.descriptors import DescriptorBudget, descriptor_budget
from sparkchain.node.durable import AcknowledgedHeight
from sparkchain.node.events import CommitBus
from sparkchain.node.forward import SubmitForwarder
from sparkchain.node.gateway import Gateway
from sparkchain.node.gc_pauses import freeze_startup_objects
from sparkchain.node.grpc_errors import new_server
from sparkchain.node.home import NodeHome
from sparkchain.node.ledger import Ledger
from sparkchain.node.logs import configure_logging
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.node.metrics import NodeMetrics, NodeState
from sparkchain.node.peer_handshake import LocalPeer
from sparkchain.node.peers import SERVER_OPTIONS, PeerEvents, PeerLink, PeerNetwork
from sparkchain.node.snapshots import SnapshotStore, SnapshotTaker
from sparkchain.node.state_sync import StateSync
from sparkchain.node.storage import holds_ledger
from sparkchain.node.sync import BlockSync, block_source
from sparkchain.node.tls import api_server_credentials
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.node")

API_SERVER_OPTIONS: list[tuple[str, Any]] = [
    # gRPC sets SO_REUSEPORT by default: a second node on this port would share it silently
    ("grpc.so_reuseport", 0),
    ("grpc.max_send_message_length", MAX_API_MESSAGE_BYTES),
    # a request larger than the largest legal one is refused (RESOURCE_EXHAUSTED) unread
    ("grpc.max_receive_message_length", MAX_API_REQUEST_BYTES),
    # fixed HTTP/2 windows: with BDP probing they grow on a fast link, and a request over
    # the limit above was read megabytes past it before the refusal reached the client
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", API_HTTP2_WINDOW_BYTES),
]
# gRPC closes a connection beyond this many as soon as it accepts it (node/descriptors.py)
MAX_CONNECTIONS_OPTION = "grpc.max_allowed_incoming_connections"
EXPIRY_SWEEP_S = 1.0
SHUTDOWN_GRACE_S = 2.0


def run(home: Path, log_level: str, *, state_sync: bool | None = None) -> int:
    """Run the node of `home` until SIGINT/SIGTERM; the process exit code. `state_sync`
    True overrides [snapshots] state_sync of its config."""
    configure_logging(log_level)
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_serve(NodeHome(home), state_sync))
    except SparkError as error:
        log.error("start_failed", extra={"code": str(error.code), "error": error.message})
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
        return 1


async def _serve(home: NodeHome, state_sync: bool | None = None) -> int:
    node = Node.open(home, state_sync=state_sync)
    try:
        await node.start()
    except BaseException:
        await node.stop()
        raise
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, node.stopping.set)
    await node.stopping.wait()
    log.info("stopping")
    await node.stop()
    log.info("stopped")
    if node.fail_stop_reason is not None:
        print(f"error: fail-stop: {node.fail_stop_reason}", file=sys.stderr, flush=True)
        return 1
    return 0


class Node:
    def __init__(
        self,
        home: NodeHome,
        config: NodeConfig,
        genesis: Genesis,
        key: SigningKey,
        *,
        state_sync: bool | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.genesis = genesis
        self.key = key
        self.is_validator = config.node.is_validator
        self._names = {v.public_key: v.name for v in genesis.validators}
        self.stopping = asyncio.Event()  # set by SIGINT/SIGTERM, or by a fail-stop
        self.fail_stop_reason: str | None = None
        self.clock_ms = node_clock()  # the host's, unless a fault test skews it
        # before LevelDB opens its files: the soft limit is raised and split here
        self.descriptors: DescriptorBudget = descriptor_budget(config.api.max_connections)
        self.ledger, acknowledged = open_ledger(
            home, genesis, config.storage, keep_heights=config.ledger.keep_heights
        )
        self.metrics = NodeMetrics()
        self.executor = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="verify")
        self.bus = CommitBus()
        limits = MempoolLimits(
            config.mempool.max_txs,
            config.mempool.max_bytes,
            max_block_bytes=config.consensus.max_block_bytes,
        )
        self.mempool = Mempool(
            self.ledger,
            limits,
            self.executor,
            bus=self.bus,
            clock_ms=self.clock_ms,
            takes_client_txs=self.is_validator,
            hash_fn=genesis.hash_fn,
        )
        self.committer = Committer(
            self.ledger, self.mempool, self.bus, acknowledged, on_fail_stop=self._fail_stop
        )
        self.snapshot_store = SnapshotStore(
            home.snapshots_dir, config.snapshots.keep, genesis.hash_fn
        )
        self.snapshot_taker = SnapshotTaker(
            self.ledger.db, self.snapshot_store, config.snapshots.interval
        )
        self.committer.on_commit.append(
            lambda pending: self.snapshot_taker.block_committed(
                pending.height, pending.block_hash, pending.header.state_root
            )
        )
        # only a new ledger restores a snapshot: one that holds a chain goes on from it
        wants_state_sync = config.snapshots.state_sync if state_sync is None else state_sync
        self._state_sync_wanted = wants_state_sync and self.ledger.height == 0
        local = LocalPeer(
            genesis.chain_id,
            key,
            observer=not self.is_validator,
            validators=self._admitted_validators(),
            observers=frozenset(bytes.fromhex(k) for k in config.p2p.observers),
        )
        events = PeerEvents(
            on_proposal=self._peer_proposal,
            on_vote=self._peer_vote,
            on_txs=self._peer_txs,
            on_height=lambda _link, height: self.sync.notice_height(height),
            on_link_up=self._link_up,
        )
        self.network = PeerNetwork(
            local,
            [dial_address(address) for address in config.p2p.peers],
            events,
            lambda: self.ledger.height,
            home.peer_tls(config),
            block_source=block_source(self.ledger),
            snapshot_source=self.snapshot_store,
            rng=random.Random(),
        )
        self.state_sync = StateSync(self.ledger, self.network, self.snapshot_store)
        self._api_tls = home.api_tls(config)
        self.sync = BlockSync(
            self.ledger,
            self.committer,
            self.network,
            on_caught_up=self._caught_up,
            follow=not self.is_validator,
        )
        self.driver = self._make_driver() if self.is_validator else None
        self.committer.on_commit.append(
            lambda pending: self.network.announce_height(pending.height)
        )
        self.committer.on_commit.append(
            lambda _pending: self.network.set_validators(self._admitted_validators())
        )
        self._watch_metrics()
        self.mempool.on_admitted.append(self._gossip)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[grpc.aio.Server] = []
        self._health: health.aio.HealthServicer | None = None
        self.forwarder: SubmitForwarder | None = None
        if config.api.submit_to:
            self.forwarder = SubmitForwarder(config.api.submit_to, home.submit_tls_ca(config))
        self.gateway: Gateway | None = None
        if config.http.listen:
            self.gateway = Gateway(
                config.http,
                home.config_path,
                self.ledger,
                self,
                self.is_validator,
                self.metrics,
                tls=home.http_tls(config),
                gs1_prefixes=config.gs1.prefixes,
            )
            # the explorer's live feed hears of each block; it never writes on this path
            self.committer.on_commit.append(self.gateway.explorer.feed.block_committed)

    def _admitted_validators(self) -> frozenset[bytes]:
        """Keys linked to as validators: the sets of the next two heights (DESIGN §12), as
        this node's own chain knows them. A node that is behind thus links to the set of
        its height (the genesis set at height 0) and catches up from it; a validator that the
        chain removed is no longer admitted (nor kept: PeerNetwork.set_validators)."""
        ledger = self.ledger
        return frozenset(ledger.validators_at(ledger.height + 1)).union(
            ledger.validators_at(ledger.height + 2)
        )

    @classmethod
    def open(cls, home: NodeHome, *, state_sync: bool | None = None) -> Node:
        if not home.exists():
            raise SparkError(ErrorCode.NOT_FOUND, f"{home.root} is not a node home")
        config = home.config()
        genesis = home.genesis()
        key = home.node_key(config)
        if (
            config.node.is_validator
            and key.public_key not in genesis.validator_keys
            and not config.p2p.peers
        ):
            # a validator added later (spark init --join) learns from its peers that the
            # chain added it; with no peers this key could never sign
            raise SparkError(
                ErrorCode.INVALID_CONFIG,
                f"{home.validator_key_path}: this key is not a validator in "
                f"{home.genesis_path} and [p2p] peers is empty; run the node as an observer, "
                "fix genesis.json, or list the peers of the network it joins",
            )
        return cls(home, config, genesis, key, state_sync=state_sync)

    def _make_driver(self) -> Any:
        from sparkchain.node.driver import (
            ConsensusDriver,  # the consensus package only on validators
        )

        return ConsensusDriver(
            ledger=self.ledger,
            mempool=self.mempool,
            committer=self.committer,
            network=self.network,
            key=self.key,
            config=self.config.consensus,
            last_signed_path=self.home.last_signed_path,
            on_future_height=self.sync.notice_height,
            on_fail_stop=self._fail_stop,
            on_commit_latency=self.metrics.commit_latency.observe,
            clock_ms=self.clock_ms,
        )

    def _watch_metrics(self) -> None:
        """Count commits and bounds hit into self.metrics; read the rest when scraped."""
        metrics = self.metrics
        self.committer.on_commit.append(lambda pending: metrics.committed(len(pending.tx_ids)))
        self.mempool.on_limit_hit = metrics.limit_hit
        self.bus.on_limit_hit = metrics.limit_hit
        self.network.on_limit_hit = metrics.limit_hit
        driver = self.driver
        metrics.watch(
            NodeState(
                height=lambda: self.ledger.height,
                consensus=lambda: driver.position() if driver is not None else None,
                mempool=lambda: (len(self.mempool), self.mempool.size_bytes),
                peers=lambda: [
                    (link is not None, link is not None and link.observer)
                    for _address, _key, link in self.network.known_peers()
                ],
                best_peer_height=self.network.max_peer_height,
            )
        )

    # ---- lifecycle ----

    async def start(self) -> None:
        # the gateway first: if a gRPC port then fails, stop() lets the gateway's go
        if self.gateway is not None:
            await _start_gateway(self.gateway, self.home.config_path)
        p2p = new_server(
            [*SERVER_OPTIONS, (MAX_CONNECTIONS_OPTION, self.descriptors.peer_connections)]
        )
        self.network.add_to_server(p2p)
        api = new_api_server(self.descriptors.api_connections, self.metrics)
        self._health = add_services(
            api, self.ledger, self.mempool, self.bus, self, forwarder=self.forwarder
        )
        # both ports are bound before anything runs; if one fails, the other is let go
        bound: list[grpc.aio.Server] = []
        try:
            for server, address, field, credentials in (
                (p2p, self.config.p2p.listen, "p2p.listen", self.network.server_credentials()),
                (api, self.config.api.listen, "api.listen", self._api_credentials()),
            ):
                _listen(server, address, field, self.home.config_path, credentials)
                bound.append(server)
        except BaseException:
            for server in bound:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    await _release(server)
            raise
        self._servers = [p2p, api]
        await p2p.start()
        self.network.start()
        if self._state_sync_wanted:
            self._spawn(self._state_sync_then_follow())
        else:
            self._follow_chain()
        await api.start()
        self._spawn(self._sweep_expired())
        frozen = freeze_startup_objects()
        self.metrics.gc_pauses.start()
        log.info(
            "started",
            extra={
                "node": self.config.node.name,
                "role": self.config.node.role,
                "chain_id": self.genesis.chain_id,
                "height": self.ledger.height,
                "api": self.config.api.listen,
                "p2p": self.config.p2p.listen,
                "http": self.config.http.listen,
                "key": self.key.public_key.hex(),
                # what node/descriptors.py set: the open-files limit and the connection caps
                "open_files_limit_before": self.descriptors.soft_limit_before,
                "open_files_limit": self.descriptors.soft_limit,
                "api_max_connections": self.descriptors.api_connections,
                "peer_max_connections": self.descriptors.peer_connections,
                "gc_frozen_objects": frozen,
            },
        )

    def _follow_chain(self) -> None:
        """Block sync, and consensus on a validator, from the ledger's height."""
        self.sync.start()
        if self.driver is not None:
            self.driver.start()

    async def _state_sync_then_follow(self) -> None:
        await self.state_sync.run()
        self._follow_chain()

    def _api_credentials(self) -> grpc.ServerCredentials | None:
        if self._api_tls is None:
            return None
        return api_server_credentials(*self._api_tls)

    async def stop(self) -> None:
        self.metrics.gc_pauses.stop()
        if self._health is not None:
            for name in ("", *SERVICE_NAMES):
                with contextlib.suppress(Exception):
                    await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.gateway is not None:
            await self.gateway.stop()
        for server in reversed(self._servers):
            await server.stop(grace=SHUTDOWN_GRACE_S)
        if self.forwarder is not None:
            await self.forwarder.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.driver is not None:
            await self.driver.close()
        await self.sync.close()
        await self.state_sync.close()
        await self.network.close()
        # what the peer links cost, for `make bench` (messages per tx, DESIGN §7)
        log.info(
            "peer_totals",
            extra={
                "height": self.ledger.height,
                **{f"sent_{kind}": count for kind, count in self.network.messages_sent.items()},
                "gossip_txs": self.network.stats["gossip_txs"],
                "gossip_batches": self.network.stats["gossip_batches"],
                "relayed": self.driver.relayed if self.driver is not None else 0,
            },
        )
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.snapshot_taker.close()
        self.ledger.close()

    def _fail_stop(self, reason: str) -> None:
        """The validator stopped signing for good (it could not persist what it signed):
        the process stops and exits non-zero, for the operator to look at (operating.md).
        Also when a block cannot be written (node/commit.py). The first reason is kept."""
        if self.fail_stop_reason is None:
            self.fail_stop_reason = reason
        self.stopping.set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_S)
            self.mempool.drop_expired(self.clock_ms())

    # ---- peer events ----

    def _peer_proposal(self, _link: PeerLink, proposal: pb.Proposal) -> None:
        if self.driver is not None:
            self.driver.on_proposal(proposal)

    def _peer_vote(self, _link: PeerLink, vote: pb.Vote) -> None:
        if self.driver is not None:
            self.driver.on_vote(vote)

    def _peer_txs(self, link: PeerLink, txs: list[pb.SignedTx]) -> None:
        self._spawn(self.mempool.add_from_peer(txs, link.key.hex()[:12]))

    def _link_up(self, link: PeerLink) -> None:
        if self.driver is not None:
            self.driver.on_link_up(link)

    def _gossip(self, txs: list[pb.SignedTx], origin: str | None) -> None:
        if origin is None:  # txs from peers were gossiped by the node that admitted them
            self.network.gossip(txs)

    def _caught_up(self, height: int) -> None:
        if self.driver is not None:
            self.driver.caught_up(height)

    # ---- StatusSource (node/api.py) ----

    def role(self) -> str:
        return self.config.node.role

    def node_name(self) -> str:
        return self.config.node.name

    def peers(self) -> Sequence[api_pb2.PeerInfo]:
        infos = []
        for address, key, link in self.network.known_peers():
            infos.append(
                api_pb2.PeerInfo(
                    name=self._names.get(key, "observer") if key else "",
                    address=address,
                    validator=key or b"",
                    connected=link is not None,
                    height=link.height if link is not None else 0,
                )
            )
        return infos

    def syncing(self) -> bool:
        return self.sync.syncing or self.state_sync.running

    def validator_key(self) -> bytes:
        return self.key.public_key if self.is_validator else b""

    def http_listen(self) -> str:
        return self.config.http.listen


def new_api_server(max_connections: int, metrics: NodeMetrics | None = None) -> grpc.aio.Server:
    """The public API's server: requests no larger than the largest legal one, at most
    MAX_API_CONCURRENT_RPCS calls at once and `max_connections` connections (DESIGN §11);
    every call counted and timed into `metrics`."""
    return new_server(
        [*API_SERVER_OPTIONS, (MAX_CONNECTIONS_OPTION, max_connections)],
        maximum_concurrent_rpcs=MAX_API_CONCURRENT_RPCS,
        outer=[metrics.grpc_interceptor()] if metrics is not None else [],
    )


def open_ledger(
    home: NodeHome,
    genesis: Genesis,
    storage: StorageConfig | None = None,
    *,
    keep_heights: int = 0,
) -> tuple[Ledger, AcknowledgedHeight]:
    """The node's ledger, refused (STORAGE_CORRUPT) when it is below the height this node
    has acknowledged (DESIGN §11); and the record of that height, for the committer. A
    ledger gone altogether is refused before a new one is created in its place.
    `keep_heights` is [ledger] keep_heights (node/pruning.py)."""
    acknowledged = AcknowledgedHeight(home.acknowledged_height_path, home.ledger_dir)
    if not holds_ledger(home.ledger_dir):
        acknowledged.check(0)
    storage = storage or StorageConfig()
    ledger = Ledger.open(
        home.ledger_dir,
        genesis,
        block_cache_bytes=storage.block_cache_bytes,
        tree_cache_nodes=storage.tree_cache_nodes,
        keep_heights=keep_heights,
    )
    try:
        acknowledged.check(ledger.height)
    except BaseException:
        ledger.close()
        raise
    return ledger, acknowledged


def _listen(
    server: grpc.aio.Server,
    address: str,
    field: str,
    config_path: Path,
    credentials: grpc.ServerCredentials | None = None,
) -> None:
    """Bind `address` on `server` (with TLS when `credentials` are given), or raise:
    ADDRESS_IN_USE when another process holds it
    (checked first, so gRPC logs nothing; and again after a failed bind, which may have
    lost a race), else UNAVAILABLE with what gRPC said. grpc reports a failed bind by
    returning 0 or raising RuntimeError, depending on its version."""
    if _in_use(address):
        raise _address_in_use(address, field, config_path)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
        detail = ""
    except RuntimeError as exc:
        port, detail = 0, f": {exc}"
    if port == 0:
        if _in_use(address):
            raise _address_in_use(address, field, config_path)
        raise SparkError(
            ErrorCode.UNAVAILABLE, f"{config_path}: {field}: cannot listen on {address}{detail}"
        )


async def _start_gateway(gateway: Gateway, config_path: Path) -> None:
    """Start the HTTP gateway, or raise ADDRESS_IN_USE as the gRPC servers do, else
    UNAVAILABLE with what the OS said."""
    address = gateway.config.listen
    if _in_use(address):
        raise _address_in_use(address, "http.listen", config_path)
    try:
        await gateway.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _address_in_use(address, "http.listen", config_path) from None
        raise SparkError(
            ErrorCode.UNAVAILABLE, f"{config_path}: http.listen: cannot listen on {address}: {exc}"
        ) from None


def _in_use(address: str) -> bool:
    """Whether binding `address` as a gRPC server does (SO_REUSEADDR, no SO_REUSEPORT)
    fails because the address is in use. Other failures (an unknown host, an address not
    on this machine) are left for gRPC's own bind to report."""
    try:
        host, port = split_address(address)
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (ValueError, OSError):
        return False
    for family, kind, proto, _name, sockaddr in found:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
    return False


def _address_in_use(address: str, field: str, config_path: Path) -> SparkError:
    return SparkError(
        ErrorCode.ADDRESS_IN_USE,
        f"{address} is already in use; another node may be running there: stop it, or "
        f"choose a free port in {field} of {config_path}",
    )


async def _release(server: grpc.aio.Server) -> None:
    """Close the listening socket of a server that never started. grpc.aio (1.85) keeps
    it open after stop() and garbage collection alike, until the server has started; so
    start it and stop it at once, without grace."""
    await server.start()
    await server.stop(None)
