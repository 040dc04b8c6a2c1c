"""A local network of real node processes on loopback, for integration tests and benchmarks.

Set up and driven only through what a user has: the `spark` CLI (`testnet init/start/stop`,
`register`, `resolve`, ...), the public gRPC API, and signals (kill -9 is a crash). Verbs
follow the harnesses of BFT libraries: start, stop, kill9, restart, wait_height.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from sparkchain.identifiers.keys import SigningKey
from sparkchain.node import keystore
from sparkchain.node.config import dial_address, write_config
from sparkchain.node.home import NodeHome
from sparkchain.node.launcher import process_alive as _alive
from sparkchain.node.launcher import running_pid
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb

T = TypeVar("T")
CLI_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class NodeInfo:
    name: str
    role: str
    home: Path
    api: str


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def until(condition: Callable[[], T], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Poll until `condition()` is truthy and return it (a liveness bound, not a speed test)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s:g} s")
        time.sleep(0.05)


class Cluster:
    def __init__(
        self,
        directory: Path,
        validators: int = 4,
        observers: int = 0,
        hash_algorithm: str | None = None,
    ) -> None:
        self.dir = directory
        self.validators = validators
        self.observers = observers
        self.hash_algorithm = hash_algorithm  # `testnet init --hash`; None: the default
        self.spark_home = directory / "spark-home"  # the CLI user's own key directory
        self.nodes: dict[str, NodeInfo] = {}
        self._channels: dict[str, grpc.Channel] = {}
        # extra environment of a node's process, from its next start (the fault harness's
        # test-only clock skew, node/clock.py)
        self.node_env: dict[str, dict[str, str]] = {}

    # ---- the CLI, as a user runs it ----

    def spark(
        self, *argv: str, timeout_s: float = CLI_TIMEOUT_S, env: dict[str, str] | None = None
    ) -> CliResult:
        env = dict(os.environ, **(env or {}), SPARK_HOME=str(self.spark_home))
        env.pop("SPARK_NODE", None)
        done = subprocess.run(
            [sys.executable, "-m", "sparkchain.cli.main", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def spark_ok(self, *argv: str, env: dict[str, str] | None = None) -> str:
        result = self.spark(*argv, env=env)
        assert result.code == 0, f"spark {' '.join(argv)} failed: {result.err}"
        return result.out

    # ---- life cycle ----

    def init(self) -> Cluster:
        self.spark_ok(
            "testnet",
            "init",
            "--dir",
            str(self.dir / "net"),
            "--validators",
            str(self.validators),
            "--observers",
            str(self.observers),
            *(("--hash", self.hash_algorithm) if self.hash_algorithm else ()),
        )
        for entry in json.loads(self.spark_ok("testnet", "status", "--dir", self.net, "--json")):
            self.nodes[entry["name"]] = NodeInfo(
                entry["name"], entry["role"], self.dir / "net" / entry["name"], entry["address"]
            )
        return self

    @property
    def net(self) -> str:
        return str(self.dir / "net")

    @property
    def root_key_file(self) -> str:
        return str(self.dir / "net" / "keys" / "root.pem")

    @property
    def genesis_file(self) -> str:
        return str(self.dir / "net" / "node1" / "genesis.json")

    def validator_names(self) -> list[str]:
        return [n for n, info in self.nodes.items() if info.role == "validator"]

    def start(self, *names: str) -> None:
        """Start the named nodes (every validator when none is named)."""
        for name in names or self.validator_names():
            env = self.node_env.get(name)
            self.spark_ok("testnet", "start", "--dir", self.net, "--node", name, env=env)

    def stop(self, *names: str) -> None:
        for name in names:
            self.spark_ok("testnet", "stop", "--dir", self.net, "--node", name)

    def stop_all(self) -> None:
        self.spark("testnet", "stop", "--dir", self.net)
        # whatever the CLI could not stop (a broken checkout, a hung node) must not outlive
        # the test run
        for info in self.nodes.values():
            pid = running_pid(NodeHome(info.home))  # checks the pid is still that node's
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def kill9(self, name: str) -> None:
        """A crash: SIGKILL, no chance to flush or say goodbye."""
        pid = self.pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        until(lambda: not _alive(pid), 10, f"{name} to die")

    def restart(self, name: str) -> None:
        self.start(name)

    def peer_address(self, name: str) -> str:
        """The address a node's peer port listens on (what other nodes dial)."""
        return dial_address(NodeHome(self.nodes[name].home).config().p2p.listen)

    def set_peers(self, name: str, peers: Iterable[str]) -> None:
        """Rewrite the peer addresses a (stopped) node dials, from its next start."""
        home = NodeHome(self.nodes[name].home)
        config = home.config()
        new_p2p = dataclasses.replace(config.p2p, peers=tuple(peers))
        write_config(home.config_path, dataclasses.replace(config, p2p=new_p2p))

    def running(self, name: str) -> bool:
        """Whether the node's process is alive (a fail-stopped node is not)."""
        return running_pid(NodeHome(self.nodes[name].home)) is not None

    def pid(self, name: str) -> int | None:
        try:
            return int((self.nodes[name].home / "node.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # ---- the public API ----

    def channel(self, name: str) -> grpc.Channel:
        if name not in self._channels:
            self._channels[name] = grpc.insecure_channel(self.nodes[name].api)
        return self._channels[name]

    def chain(self, name: str) -> api_pb2_grpc.ChainStub:
        return api_pb2_grpc.ChainStub(self.channel(name))

    def identifiers(self, name: str) -> api_pb2_grpc.IdentifiersStub:
        return api_pb2_grpc.IdentifiersStub(self.channel(name))

    def status(self, name: str) -> api_pb2.StatusResponse:
        response: api_pb2.StatusResponse = self.chain(name).Status(
            api_pb2.StatusRequest(), timeout=5
        )
        return response

    def height(self, name: str) -> int:
        try:
            return self.status(name).height
        except grpc.RpcError:
            return -1

    def wait_height(self, name: str, height: int, timeout_s: float = 30.0) -> int:
        return until(
            lambda: self.height(name) >= height and self.height(name),
            timeout_s,
            f"{name} at height {height}",
        )

    def wait_in_step(self, names: Iterable[str], timeout_s: float = 30.0) -> int:
        """Wait until every named node has committed what the first one has; its height."""
        names = list(names)
        target = self.height(names[0])
        for name in names[1:]:
            self.wait_height(name, target, timeout_s)
        return target

    def state_root_at(self, name: str, height: int) -> bytes:
        block = self.chain(name).GetBlock(api_pb2.GetBlockRequest(height=height), timeout=5)
        root: bytes = block.header.state_root
        return root

    def submit(
        self, name: str, tx: pb.SignedTx, wait: bool = True, timeout_ms: int = 20_000
    ) -> api_pb2.SubmitResponse:
        response: api_pb2.SubmitResponse = self.identifiers(name).Submit(
            api_pb2.SubmitRequest(tx=tx, wait_for_commit=wait, timeout_ms=timeout_ms),
            timeout=timeout_ms / 1000 + 5,
        )
        return response

    def genesis_chain_id(self) -> str:
        data: dict[str, object] = json.loads(Path(self.genesis_file).read_text())
        return str(data["chain_id"])

    def root_key(self) -> SigningKey:
        return keystore.read_key_file(Path(self.root_key_file))


# ---- the HTTP gateway of a cluster's node ----


def get(base: str, path: str) -> tuple[int, dict[str, Any], Any]:
    """(HTTP status, headers, the JSON body) of GET base+path."""
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def http_base(cluster: Cluster, name: str) -> str:
    statuses = json.loads(cluster.spark_ok("testnet", "status", "--dir", cluster.net, "--json"))
    return "http://" + str(next(s["http"] for s in statuses if s["name"] == name))
