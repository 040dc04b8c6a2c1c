"""State sync on real processes (issue 13 part 4): two validators hold a chain of 20,000
identifiers and take snapshots; one of them serves every chunk corrupted. A fresh observer
started with `spark node start --state-sync` refuses the bad chunks, fetches them from the
other validator, restores the snapshot, block-syncs the rest, and serves resolutions that
`spark resolve --verify` checks against the genesis (`spark ledger verify` of such a ledger:
tests/test_snapshots.py).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.ledger.genesis import parse_genesis
from sparkchain.ledger.proof import verify_resolution
from sparkchain.node.home import NodeHome
from sparkchain.node.launcher import spawn_node
from sparkchain.node.mempool import wall_clock_ms
from sparkchain.proto import api_pb2
from tests.helpers.cluster import Cluster, until

pytestmark = pytest.mark.timeout(240)

IDENTIFIERS = 20_000
BATCH = 1000
INTERVAL = 10  # blocks between snapshots


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, validators=2, observers=1).init()
    try:
        for name in cluster.validator_names():
            config = cluster.nodes[name].home / "config.toml"
            text = config.read_text()
            assert "interval = 1000" in text
            config.write_text(text.replace("interval = 1000", f"interval = {INTERVAL}"))
        cluster.start()
        cluster.spark_ok(
            "prefix", "create", "88", "--key-file", cluster.root_key_file,
            "--node", cluster.nodes["node1"].api,
        )  # fmt: skip
        yield cluster
    finally:
        cluster.stop_all()


def _load(net: Cluster) -> int:
    """20 RegisterBatch txs of 1,000 identifiers; the height the last one committed at."""
    builder = TxBuilder(net.genesis_chain_id(), net.root_key(), secrets.SystemRandom())
    stub = net.identifiers("node1")
    last = 0
    for start in range(0, IDENTIFIERS, BATCH):
        items = [
            (f"SN-{n:05d}", [value(1, "URL", f"https://example.com/sn/{n}")])
            for n in range(start, start + BATCH)
        ]
        tx = builder.register_batch("88", items, now_ms=wall_clock_ms())
        wait = start + BATCH == IDENTIFIERS
        response = stub.Submit(
            api_pb2.SubmitRequest(tx=tx, wait_for_commit=wait, timeout_ms=120_000), timeout=130
        )
        assert not response.error_code, response
        last = response.height if wait else last
    return last


def _register(net: Cluster, identifier: str) -> int:
    builder = TxBuilder(net.genesis_chain_id(), net.root_key(), secrets.SystemRandom())
    tx = builder.register(
        identifier, [value(1, "URL", "https://example.com/x")], now_ms=wall_clock_ms()
    )
    response = net.submit("node1", tx)
    assert response.committed, response
    return int(response.height)


def _snapshot_heights(net: Cluster, name: str) -> list[int]:
    folder = NodeHome(net.nodes[name].home).snapshots_dir
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if (p / "manifest").is_file())


def test_a_fresh_observer_state_syncs_past_corrupt_chunks_and_serves_verified_resolves(
    net: Cluster,
) -> None:
    loaded_at = _load(net)
    # blocks up to the next multiple of the interval: both validators snapshot that height
    target = (loaded_at // INTERVAL + 1) * INTERVAL
    number = 0
    while net.height("node1") < target:
        _register(net, f"88/TOP-UP-{number}")
        number += 1
    for name in ("node1", "node2"):
        until(lambda n=name: target in _snapshot_heights(net, n), 60, f"{name}'s snapshot {target}")
    # node1 serves the newest snapshot with every chunk corrupted
    bad = NodeHome(net.nodes["node1"].home).snapshots_dir / f"{target:012d}"
    chunks = sorted(bad.glob("chunk-*"))
    assert len(chunks) >= 3  # 20,000 records make several 1 MiB chunks
    for chunk in chunks:
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))

    observer = NodeHome(net.nodes["observer1"].home)
    spawn_node(
        observer,
        command=[sys.executable, "-m", "sparkchain.cli.main", "node", "start",
                 "--home", str(observer.root), "--state-sync"],
    )  # fmt: skip
    after = _register(net, "88/AFTER-SNAPSHOT")
    net.wait_height("observer1", after, 90)
    log = observer.log_path.read_text()
    assert '"snapshot_chunk_refused"' in log or "snapshot_chunk_refused" in log, log[-2000:]
    assert "state_synced" in log
    # it restored the snapshot: no block below it was fetched
    with pytest.raises(grpc.RpcError) as refused:
        net.chain("observer1").GetBlock(api_pb2.GetBlockRequest(height=3), timeout=10)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"state snapshot at height {target}" in str(refused.value.details())
    out = net.spark_ok(
        "resolve", "88/SN-19999", "--verify", "--genesis", net.genesis_file,
        "--node", net.nodes["observer1"].api,
    )  # fmt: skip
    assert "88/SN-19999" in out
    for identifier in ("88/SN-00000", "88/AFTER-SNAPSHOT"):
        request = api_pb2.ResolveRequest(identifier=identifier, with_proof=True)
        answer = net.identifiers("observer1").Resolve(request, timeout=10)
        genesis = parse_genesis(Path(net.genesis_file).read_bytes())
        record, _ = verify_resolution(
            genesis.validator_keys, genesis.chain_id, identifier, answer.proof
        )
        assert record is not None and record.identifier == identifier
