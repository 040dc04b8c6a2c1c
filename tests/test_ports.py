"""A node refuses a port that is already in use.

gRPC servers set SO_REUSEPORT by default, so a second node on the same port used to start
and share it silently: requests alternated between two different chains. These tests run
a real node, then a second one on its API or peer port, and expect the second to exit at
once naming the address, while the first keeps answering alone.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node import launcher, runtime
from sparkchain.node.home import NodeHome, free_loopback_ports

START_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 20.0  # a node that refuses its port exits in about a second

ENTRY_POINTS = {
    "python -m sparkchain.node": [sys.executable, "-m", "sparkchain.node", "--home"],
    "spark node start": [sys.executable, "-m", "sparkchain.cli.main", "node", "start", "--home"],
}


def _init(root: Path, chain_id: str, api: str, p2p: str) -> NodeHome:
    argv = ["init", "--home", str(root), "--chain-id", chain_id]
    assert main([*argv, "--api-listen", api, "--p2p-listen", p2p]) == 0
    return NodeHome(root)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeHome]:
    api_port, p2p_port = free_loopback_ports(2)
    root = tmp_path_factory.mktemp("first") / "home"
    home = _init(root, "first", f"127.0.0.1:{api_port}", f"127.0.0.1:{p2p_port}")
    try:
        launcher.start_node(home, timeout_s=START_TIMEOUT_S)
        yield home
    finally:
        launcher.stop_node(home)


def _run_until_exit(argv: list[str]) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the second node kept running on a port in use; stderr: {err[-2000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("shared", ["api.listen", "p2p.listen"])
def test_a_second_node_on_a_used_port_exits_naming_the_address(
    first: NodeHome, tmp_path: Path, shared: str, entry: str
) -> None:
    taken = first.config()
    api_port, p2p_port = free_loopback_ports(2)
    api = taken.api.listen if shared == "api.listen" else f"127.0.0.1:{api_port}"
    p2p = taken.p2p.listen if shared == "p2p.listen" else f"127.0.0.1:{p2p_port}"
    second = _init(tmp_path / "second", "second", api, p2p)

    result = _run_until_exit([*ENTRY_POINTS[entry], str(second.root)])

    address = api if shared == "api.listen" else p2p
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: ADDRESS_IN_USE: {address} is already in use")
    assert shared in lines[0] and str(second.config_path) in lines[0]
    # the first node still answers, and only it does (no alternation between two chains)
    for _ in range(4):
        answer = launcher.query_status(taken.api.listen, timeout_s=5.0)
        assert answer is not None and answer.chain_id == "first"


async def test_a_port_in_use_releases_the_port_already_bound(tmp_path: Path) -> None:
    """The peer port is bound first; when the API port is taken, start() fails and leaves
    the peer port free again: nothing stays half-started."""
    api_port, p2p_port = free_loopback_ports(2)
    home = _init(tmp_path / "home", "half", f"127.0.0.1:{api_port}", f"127.0.0.1:{p2p_port}")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", api_port))
        holder.listen()
        node = runtime.Node.open(home)
        try:
            with pytest.raises(SparkError) as caught:
                await node.start()
        finally:
            await node.stop()
    assert caught.value.code is ErrorCode.ADDRESS_IN_USE
    assert caught.value.message.startswith(f"127.0.0.1:{api_port} is already in use")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", p2p_port))  # raises if the peer port is still held


class _RacedServer:
    """A server whose bind loses a race: someone takes the port just before it binds.
    grpc reports that by returning 0 or raising RuntimeError, depending on its version."""

    def __init__(self, raises: bool) -> None:
        self.raises = raises
        self.thief = socket.socket()

    def add_insecure_port(self, address: str) -> int:
        host, port = address.rsplit(":", 1)
        self.thief.bind((host, int(port)))
        self.thief.listen()
        if self.raises:
            raise RuntimeError(f"Failed to bind to address {address}")
        return 0


@pytest.mark.parametrize("raises", [False, True], ids=["returns-0", "raises"])
def test_a_port_taken_during_the_bind_is_reported_as_in_use(tmp_path: Path, raises: bool) -> None:
    (port,) = free_loopback_ports(1)
    server: Any = _RacedServer(raises)
    try:
        with pytest.raises(SparkError) as caught:
            runtime._listen(server, f"127.0.0.1:{port}", "api.listen", tmp_path / "config.toml")
    finally:
        server.thief.close()
    assert caught.value.code is ErrorCode.ADDRESS_IN_USE
    assert caught.value.message.startswith(f"127.0.0.1:{port} is already in use")
