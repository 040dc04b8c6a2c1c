"""`spark node resync` in a real network (issue 10 finding 6): a validator whose ledger lost
its CURRENT file refuses to start with STORAGE_CORRUPT; after `spark node resync` it starts
from genesis, block-syncs, and reaches the others' height and state root.

Four validator processes and an observer on loopback, driven like test_cluster.py only
through the CLI and the public gRPC API.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node.durable import AcknowledgedHeight
from sparkchain.node.home import NodeHome
from sparkchain.node.mempool import wall_clock_ms
from sparkchain.proto import types_pb2 as pb
from tests.helpers.cluster import Cluster

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, validators=4, observers=1).init()
    try:
        cluster.start()
        cluster.start("observer1")
        cluster.spark_ok(
            "prefix",
            "create",
            "88",
            "--key-file",
            cluster.root_key_file,
            "--node",
            cluster.nodes["node1"].api,
        )
        yield cluster
    finally:
        cluster.stop_all()


def _register(net: Cluster, identifier: str) -> int:
    builder = TxBuilder(net.genesis_chain_id(), net.root_key(), secrets.SystemRandom())
    tx: pb.SignedTx = builder.register(
        identifier, [value(1, "URL", f"https://example.com/{identifier}")], now_ms=wall_clock_ms()
    )
    response = net.submit("node1", tx)
    assert response.committed, response
    height: int = response.height
    return height


def _acknowledged(net: Cluster, name: str) -> int:
    home = NodeHome(net.nodes[name].home)
    return AcknowledgedHeight(home.acknowledged_height_path, home.ledger_dir).read()


def test_a_validator_with_a_damaged_ledger_is_refused_then_resyncs_from_its_peers(
    net: Cluster,
) -> None:
    for i in range(3):
        _register(net, f"88/BEFORE-{i}")
    net.wait_in_step(["node1", "node4", "observer1"])
    net.stop("node4", "observer1")
    # every node records what it committed, observers too
    assert _acknowledged(net, "node4") >= 3
    assert _acknowledged(net, "observer1") >= 3

    node4 = NodeHome(net.nodes["node4"].home)
    (node4.ledger_dir / "CURRENT").unlink()
    refused = net.spark("testnet", "start", "--dir", net.net, "--node", "node4")
    assert refused.code != 0
    assert "STORAGE_CORRUPT" in refused.err and "spark node resync" in refused.err
    assert "Traceback" not in refused.err

    last_signed = node4.last_signed_path.read_bytes()
    resynced = net.spark_ok("node", "resync", "--home", str(node4.root))
    assert "ledger.damaged-" in resynced
    assert node4.last_signed_path.read_bytes() == last_signed
    for i in range(2):  # the others move on meanwhile
        _register(net, f"88/AFTER-{i}")

    net.restart("node4")
    net.restart("observer1")
    top = _register(net, "88/LAST")
    net.wait_height("node4", top)
    net.wait_height("observer1", top)
    assert net.state_root_at("node4", top) == net.state_root_at("node1", top)
