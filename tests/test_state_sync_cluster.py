"""State sync on real processes (issue 13 part 4): two validators hold a chain of 20,000
identifiers and take snapshots; one of them serves every chunk corrupted. A fresh observer
started with `spark node start --state-sync` refuses the bad chunks, fetches them from the
other validator, restores the snapshot, block-syncs the rest, and serves resolutions that
`spark resolve --verify` checks against the genesis (`spark ledger verify` of such a ledger:
tests/test_snapshots.py). A small chain whose genesis chose SM3 state-syncs the same way,
every hash of the snapshot being SM3 (issue 16).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sparkchain.identifiers.hashing import sm3
from sparkchain.identifiers.tags import SNAPSHOT_CHUNK_TAG
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.ledger.genesis import parse_genesis
from sparkchain.ledger.proof import verify_resolution
from sparkchain.node.home import NodeHome
from sparkchain.node.launcher import spawn_node
from sparkchain.node.mempool import wall_clock_ms
from sparkchain.proto import api_pb2, peer_pb2
from tests.helpers.cluster import Cluster, until

pytestmark = pytest.mark.timeout(240)

IDENTIFIERS = 20_000
BATCH = 1000
INTERVAL = 10  # blocks between snapshots
SM3_INTERVAL = 3  # the SM3 chain is small: a snapshot within a few blocks


def _started(cluster: Cluster, interval: int) -> Iterator[Cluster]:
    """`cluster`'s validators running with a snapshot every `interval` blocks, prefix 88
    created; the observer is not started."""
    cluster.init()
    try:
        for name in cluster.validator_names():
            config = cluster.nodes[name].home / "config.toml"
            text = config.read_text()
            assert "interval = 1000" in text
            config.write_text(text.replace("interval = 1000", f"interval = {interval}"))
        cluster.start()
        cluster.spark_ok(
            "prefix", "create", "88", "--key-file", cluster.root_key_file,
            "--node", cluster.nodes["node1"].api,
        )  # fmt: skip
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Cluster]:
    yield from _started(Cluster(tmp_path, validators=2, observers=1), INTERVAL)


@pytest.fixture
def sm3_net(tmp_path: Path) -> Iterator[Cluster]:
    yield from _started(
        Cluster(tmp_path, validators=2, observers=1, hash_algorithm="sm3"), SM3_INTERVAL
    )


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
    # A snapshot being written is a `<height>.tmp` folder that already holds its manifest
    # just before the rename: only whole ones (named by their height alone) count.
    whole = (p for p in folder.iterdir() if p.name.isdigit() and (p / "manifest").is_file())
    return sorted(int(p.name) for p in whole)


def _start_state_sync(net: Cluster) -> NodeHome:
    observer = NodeHome(net.nodes["observer1"].home)
    spawn_node(
        observer,
        command=[sys.executable, "-m", "sparkchain.cli.main", "node", "start",
                 "--home", str(observer.root), "--state-sync"],
    )  # fmt: skip
    return observer


def _top_up_to_snapshot(net: Cluster, interval: int, name_prefix: str) -> int:
    """Register until node1 is at the next multiple of `interval`; wait for both
    validators' snapshot there; that height."""
    target = (net.height("node1") // interval + 1) * interval
    number = 0
    while net.height("node1") < target:
        _register(net, f"88/{name_prefix}-{number}")
        number += 1
    for name in ("node1", "node2"):
        until(lambda n=name: target in _snapshot_heights(net, n), 60, f"{name}'s snapshot {target}")
    return target


def test_a_fresh_observer_state_syncs_past_corrupt_chunks_and_serves_verified_resolves(
    net: Cluster,
) -> None:
    _load(net)
    # blocks up to the next multiple of the interval: both validators snapshot that height
    target = _top_up_to_snapshot(net, INTERVAL, "TOP-UP")
    # node1 serves the newest snapshot with every chunk corrupted
    bad = NodeHome(net.nodes["node1"].home).snapshots_dir / f"{target:012d}"
    chunks = sorted(bad.glob("chunk-*"))
    assert len(chunks) >= 3  # 20,000 records make several 1 MiB chunks
    for chunk in chunks:
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))

    observer = _start_state_sync(net)
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


def test_a_fresh_observer_state_syncs_an_sm3_chain_and_serves_verified_resolves(
    sm3_net: Cluster,
) -> None:
    net = sm3_net
    target = _top_up_to_snapshot(net, SM3_INTERVAL, "SM3")
    observer = _start_state_sync(net)
    after = _register(net, "88/SM3-AFTER")
    net.wait_height("observer1", after, 90)
    assert "state_synced" in observer.log_path.read_text()
    with pytest.raises(grpc.RpcError) as refused:
        net.chain("observer1").GetBlock(api_pb2.GetBlockRequest(height=1), timeout=10)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"state snapshot at height {target}" in str(refused.value.details())
    # the snapshot it began from, as fetched and kept: its chunks are named by SM3
    kept = observer.snapshots_dir / f"{target:012d}"
    manifest = peer_pb2.SnapshotManifest.FromString((kept / "manifest").read_bytes())
    chunks = sorted(kept.glob("chunk-*"))
    assert list(manifest.chunk_hashes) == [sm3(SNAPSHOT_CHUNK_TAG + c.read_bytes()) for c in chunks]
    for identifier in ("88/SM3-0", "88/SM3-AFTER"):
        out = net.spark_ok(
            "resolve", identifier, "--verify", "--genesis", net.genesis_file,
            "--node", net.nodes["observer1"].api,
        )  # fmt: skip
        assert "verified at height" in out and identifier in out
