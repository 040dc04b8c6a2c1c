"""State snapshots (issue 13 part 4), in process: a snapshot taken from one ledger, checked
against the genesis and written into a new one, gives the same state, serves proofs and
takes the next blocks; every link of the check refuses a forgery; reads below the base
are refused naming it; the base survives a reopen and `ledger verify` starts from it.
All of it on a SHA-256 chain and on an SM3 one (issue 16: every hash is the genesis')."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashAlgorithm, sha256, sm3
from sparkchain.identifiers.tags import SMT_LEAF, SNAPSHOT_CHUNK_TAG
from sparkchain.ledger import smt
from sparkchain.ledger.genesis import genesis_to_json
from sparkchain.ledger.proof import verify_resolution
from sparkchain.ledger.smt_walk import reachable_nodes
from sparkchain.node import schema, snapshot_leaves
from sparkchain.node.chain_check import check_chain
from sparkchain.node.home import NodeHome
from sparkchain.node.ledger import Ledger
from sparkchain.node.snapshot_restore import (
    change_heights,
    decode_entries,
    verify_snapshot,
)
from sparkchain.node.snapshot_write import restore_snapshot
from sparkchain.node.snapshots import (
    SNAPSHOT_FORMAT,
    SnapshotStore,
    cut_chunks,
    decode_chunk,
    snapshot_entries,
)
from sparkchain.node.storage import TreeNodeStore
from sparkchain.proto import peer_pb2
from tests.helpers.chain import make_test_genesis
from tests.helpers.ledger import LedgerChain, certificate

BLOCKS = 4
PER_BLOCK = 30
CHUNK_BYTES = 2048  # small chunks, so a snapshot has several


@pytest.fixture(params=list(HashAlgorithm), ids=lambda algorithm: algorithm.value)
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerChain]:
    genesis = make_test_genesis(hash_algorithm=request.param)
    built = LedgerChain(tmp_path / "source", genesis)
    acme = built.signer("acme")
    for height in range(1, BLOCKS + 1):
        now = built.next_time_ms
        names = [f"88/s{height}-{i}" for i in range(PER_BLOCK)]
        built.commit([acme.register(name, now_ms=now) for name in names])
    yield built
    built.close()


def _snapshot(
    chain: LedgerChain, store: SnapshotStore, snapshot_format: int = SNAPSHOT_FORMAT
) -> peer_pb2.SnapshotManifest:
    ledger = chain.ledger
    entries = snapshot_entries(ledger.db, ledger.state_root, snapshot_format)
    return store.write(
        ledger.height,
        ledger.last_block_hash,
        ledger.state_root,
        cut_chunks(entries, CHUNK_BYTES),
        snapshot_format=snapshot_format,
    )


def _committed(ledger: Ledger, height: int) -> peer_pb2.CommittedBlock:
    block, _, cert = ledger.get_block(height)
    assert cert is not None
    return peer_pb2.CommittedBlock(block=block, commit=cert)


def _chunks(store: SnapshotStore, manifest: peer_pb2.SnapshotManifest) -> list[bytes]:
    return [store.chunk(manifest.height, i) for i in range(len(manifest.chunk_hashes))]


def _restored(
    chain: LedgerChain, tmp_path: Path, store: SnapshotStore, snapshot_format: int = SNAPSHOT_FORMAT
) -> Ledger:
    """A new ledger restored from a snapshot of the chain as a state sync does it."""
    manifest = _snapshot(chain, store, snapshot_format)
    chunks = _chunks(store, manifest)
    fresh = Ledger.open(tmp_path / "restored", chain.genesis)
    restore_snapshot(fresh, manifest, chunks, _committed(chain.ledger, manifest.height), [])
    return fresh


@pytest.fixture(params=["here", "worker"])
def records_derived(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records' leaves derived in this process, or mostly in a worker process as for
    a large snapshot (node/snapshot_leaves.py)."""
    if request.param == "worker":
        monkeypatch.setattr(snapshot_leaves, "WORKER_MIN_RECORDS", 1)
        monkeypatch.setattr(snapshot_leaves, "_cores", lambda: 2)


@pytest.mark.parametrize("snapshot_format", [1, 2])
@pytest.mark.usefixtures("records_derived")
def test_a_restored_ledger_has_the_same_state_proves_it_and_takes_the_next_blocks(
    chain: LedgerChain, tmp_path: Path, snapshot_format: int
) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    restored = _restored(chain, tmp_path, store, snapshot_format)
    source = chain.ledger
    manifest = store.manifests()[0]
    assert len(manifest.chunk_hashes) > 2 and manifest.format == snapshot_format
    carried = [
        value
        for chunk in _chunks(store, manifest)
        for key, value in zip(*decode_chunk(chunk), strict=True)
        if key[:1] == schema.TREE_NODE
    ]
    # format 1 carries the tree's leaves, format 2 its internal nodes only
    assert any(node[:1] == SMT_LEAF for node in carried) == (snapshot_format == 1)
    # ...and the leaves the joiner built are the source's, node for node
    source_tree = dict(reachable_nodes(TreeNodeStore(source.db), source.state_root))
    assert dict(reachable_nodes(TreeNodeStore(restored.db), restored.state_root)) == source_tree
    assert (restored.height, restored.state_root) == (source.height, source.state_root)
    assert restored.base_height == BLOCKS
    assert restored.resolve("88/s2-7") == source.resolve("88/s2-7")
    record, proof = restored.resolve_with_proof("88/s1-0")
    proven, height = verify_resolution(
        chain.genesis.validator_keys,
        chain.genesis.chain_id,
        "88/s1-0",
        proof,
        chain.genesis.hash_fn,
    )
    assert proven == record and height == BLOCKS
    assert (
        restored.owned_by(chain.signer("acme").bid, schema.OWNED_RECORD, 1000)[0]
        == (source.owned_by(chain.signer("acme").bid, schema.OWNED_RECORD, 1000)[0])
    )
    assert restored.prefix_info("88") == source.prefix_info("88")
    # its tree cache holds the upper levels, as warming them from disk on a reopen would
    from_disk = smt.NodeCache()
    smt.warm_cache(TreeNodeStore(restored.db), restored.state_root, from_disk)
    assert len(from_disk) > 1
    assert restored._tree_cache._nodes == from_disk._nodes
    # the next block, as block sync gives it: validated by re-execution, then committed
    built = chain.commit([chain.signer("acme").register("88/after", now_ms=chain.next_time_ms)])
    pending = restored.validate_block(built.block_bytes)
    restored.commit_block(pending, certificate(chain.genesis, pending.height, pending.block_hash))
    assert restored.state_root == source.state_root
    assert restored.history("88/after")[0].height == BLOCKS + 1
    restored.close()


def test_reads_below_the_base_are_refused_naming_it_and_the_base_survives_a_reopen(
    chain: LedgerChain, tmp_path: Path
) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    _restored(chain, tmp_path, store).close()
    reopened = Ledger.open(tmp_path / "restored", chain.genesis)
    assert reopened.base_height == BLOCKS and reopened.height == BLOCKS
    with pytest.raises(SparkError, match=f"state snapshot at height {BLOCKS}") as block:
        reopened.get_block(2)
    assert block.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(SparkError, match=f"snapshot at height {BLOCKS}") as history:
        reopened.history("88/s1-1")
    assert history.value.code == ErrorCode.UNAVAILABLE
    assert reopened.get_block(BLOCKS)[0].header  # the base block itself is kept
    reopened.close()


def _refusal(
    chain: LedgerChain,
    manifest: peer_pb2.SnapshotManifest,
    chunks: list[bytes],
    base: peer_pb2.CommittedBlock | None = None,
) -> str:
    """The refusal of the snapshot, the same by the check alone and by a state sync's
    restore (which writes while it checks), after which the ledger holds what it held."""
    base = base or _committed(chain.ledger, manifest.height)
    with pytest.raises(SparkError) as refused:
        verify_snapshot(chain.genesis, manifest, chunks, base, [])
    assert refused.value.code == ErrorCode.INVALID_PROOF
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Ledger.open(Path(scratch), chain.genesis)
        held = list(fresh.db.iterator())
        with pytest.raises(SparkError) as restoring:
            restore_snapshot(fresh, manifest, chunks, base, [])
        assert (restoring.value.code, restoring.value.message) == (
            ErrorCode.INVALID_PROOF,
            refused.value.message,
        )
        assert list(fresh.db.iterator()) == held
        fresh.close()
        Ledger.open(Path(scratch), chain.genesis).close()  # not taken for a broken restore
    return refused.value.message


def test_a_corrupted_chunk_is_refused_by_its_hash(chain: LedgerChain, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    manifest = _snapshot(chain, store)
    chunks = _chunks(store, manifest)
    chunks[1] = chunks[1][:-1] + bytes([chunks[1][-1] ^ 1])
    assert "chunk 1 of snapshot" in _refusal(chain, manifest, chunks)


def test_a_manifest_rehashed_over_changed_state_is_refused_by_the_certified_root(
    chain: LedgerChain, tmp_path: Path
) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    entries = list(snapshot_entries(chain.ledger.db, chain.ledger.state_root))
    entries = [e for e in entries if e[0] != schema.record_key("88/S3-3")]  # a record dropped
    ledger = chain.ledger
    forged = store.write(
        ledger.height, ledger.last_block_hash, ledger.state_root, cut_chunks(entries, CHUNK_BYTES)
    )
    assert "missing from it" in _refusal(chain, forged, _chunks(store, forged))


@pytest.mark.usefixtures("records_derived")
def test_a_changed_record_or_a_forged_tree_node_is_refused(
    chain: LedgerChain, tmp_path: Path
) -> None:
    ledger = chain.ledger
    entries = list(snapshot_entries(ledger.db, ledger.state_root))
    changed = [(k, v + b"\x00" if k == schema.record_key("88/S3-3") else v) for k, v in entries]
    # not a record at all, in the worker's share and in this process's
    undecodable = [
        (k, b"\xff\xff\xff" if k in (schema.record_key("88/S1-0"), _last_record(entries)) else v)
        for k, v in entries
    ]
    tree_at = next(i for i, (k, _) in enumerate(entries) if k[:1] == schema.TREE_NODE)
    key, node = entries[tree_at]
    forged_node = [
        *entries[:tree_at],
        (key, node[:3] + bytes([node[3] ^ 1]) + node[4:]),  # a child's hash
        *entries[tree_at + 1 :],
    ]
    forged_trailer = [  # the unhashed leaf keys: the leaf it names is no record's
        *entries[:tree_at],
        (key, node[:-1] + bytes([node[-1] ^ 1])),
        *entries[tree_at + 1 :],
    ]
    extra_node = [*entries, (schema.tree_node_key(b"\xff" * 32), node)]
    with_leaves = list(snapshot_entries(ledger.db, ledger.state_root, 1))  # format 1
    leaf_at = next(i for i, (k, v) in enumerate(with_leaves) if k[:1] == schema.TREE_NODE and
                   v[:1] == SMT_LEAF)  # fmt: skip
    leaf_key, leaf = with_leaves[leaf_at]
    forged_leaf = [
        *with_leaves[:leaf_at],
        (leaf_key, leaf[:-1] + b"\x00"),
        *with_leaves[leaf_at + 1 :],
    ]
    # format 2 with a true leaf given as well: no node beyond the internal ones may come
    leaf_given = sorted([*entries, (leaf_key, leaf)])
    for number, (forged, snapshot_format, reason) in enumerate(
        [(changed, 2, "is not in the state"), (undecodable, 2, "record '88/S1-0' is not in"),
         (forged_node, 2, "does not hash to its name"),
         (forged_trailer, 2, "is not in the state"),
         (extra_node, 2, "not under root"), (forged_leaf, 1, "is not the leaf of record '88/S"),
         (leaf_given, 2, "1 nodes given are not under root")]
    ):  # fmt: skip
        store = SnapshotStore(tmp_path / f"snapshots{number}", 1, chain.genesis.hash_fn)
        manifest = store.write(
            ledger.height,
            ledger.last_block_hash,
            ledger.state_root,
            cut_chunks(forged, CHUNK_BYTES),
            snapshot_format=snapshot_format,
        )
        assert reason in _refusal(chain, manifest, _chunks(store, manifest))


def _last_record(entries: list[tuple[bytes, bytes]]) -> bytes:
    return max(k for k, _ in entries if k[:1] == schema.RECORD)


def test_a_snapshot_whose_header_lacks_a_quorum_is_refused(
    chain: LedgerChain, tmp_path: Path
) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    manifest = _snapshot(chain, store)
    base = _committed(chain.ledger, manifest.height)
    weak = certificate(chain.genesis, manifest.height, manifest.block_hash, signers=1)
    base.commit.CopyFrom(weak)
    assert "header" in _refusal(chain, manifest, _chunks(store, manifest), base)


def test_chunks_decode_back_to_the_entries_in_order(chain: LedgerChain) -> None:
    entries = list(snapshot_entries(chain.ledger.db, chain.ledger.state_root))
    chunks = [chunk for chunk, _ in cut_chunks(entries, CHUNK_BYTES)]
    assert [e for chunk in chunks for e in zip(*decode_chunk(chunk), strict=True)] == entries
    decoded = decode_entries(chunks)
    assert list(zip(decoded.keys, decoded.values, strict=True)) == entries
    assert change_heights([k for k, _ in entries], chain.ledger.height) == []  # no set change
    with pytest.raises(SparkError, match="snapshot chunk"):
        decode_chunk(chunks[0][:-3])


def test_the_store_keeps_the_newest_and_the_base(chain: LedgerChain, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 1, chain.genesis.hash_fn)
    ledger = chain.ledger
    entries = list(snapshot_entries(ledger.db, ledger.state_root))
    for height, base in ((1, True), (2, False), (3, False)):
        store.write(height, bytes(32), bytes(32), cut_chunks(entries), base=base)
    assert [m.height for m in store.manifests()] == [3, 1]
    assert SnapshotStore(tmp_path / "snapshots", 1, chain.genesis.hash_fn).base_height() == 1
    with pytest.raises(SparkError, match="no snapshot at height 2"):
        store.chunk(2, 0)


def test_ledger_verify_replays_from_the_base_snapshot(chain: LedgerChain, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    restored = _restored(chain, tmp_path, store)
    built = chain.commit([chain.signer("acme").register("88/later", now_ms=chain.next_time_ms)])
    pending = restored.validate_block(built.block_bytes)
    restored.commit_block(pending, certificate(chain.genesis, pending.height, pending.block_hash))
    restored.close()
    report = check_chain(tmp_path / "restored", chain.genesis, snapshots_dir=store.directory)
    assert report.ok, report.problem
    assert (report.base_height, report.height, report.checked) == (BLOCKS, BLOCKS + 1, 1)


def test_spark_ledger_verify_says_the_ledger_began_from_a_snapshot(
    chain: LedgerChain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = NodeHome(tmp_path / "home")
    home.data_dir.mkdir(parents=True)
    home.genesis_path.write_text(genesis_to_json(chain.genesis))
    store = SnapshotStore(home.snapshots_dir, 2, chain.genesis.hash_fn)
    manifest = _snapshot(chain, store)
    fresh = Ledger.open(home.ledger_dir, chain.genesis)
    restore_snapshot(
        fresh, manifest, _chunks(store, manifest), _committed(chain.ledger, manifest.height), []
    )
    fresh.close()
    assert main(["ledger", "verify", "--home", str(home.root)]) == 0
    assert f"began from a state snapshot at height {BLOCKS}" in capsys.readouterr().out
    shutil.rmtree(home.snapshots_dir)
    assert main(["ledger", "verify", "--home", str(home.root)]) == 1
    assert "cannot be re-checked" in capsys.readouterr().err


def test_the_manifest_names_each_chunk_by_the_chains_hash(
    chain: LedgerChain, tmp_path: Path
) -> None:
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    manifest = _snapshot(chain, store)
    chunks = _chunks(store, manifest)
    chosen, other = (
        (sm3, sha256) if chain.genesis.hash_algorithm is HashAlgorithm.SM3 else (sha256, sm3)
    )
    assert list(manifest.chunk_hashes) == [chosen(SNAPSHOT_CHUNK_TAG + c) for c in chunks]
    assert manifest.chunk_hashes[0] != other(SNAPSHOT_CHUNK_TAG + chunks[0])


def test_a_snapshot_checked_with_another_hash_is_refused(
    chain: LedgerChain, tmp_path: Path
) -> None:
    # the same chain's snapshot, its chunks renamed by the other hash: the chunks then pass,
    # but the blocks and the state tree were built with the genesis' hash, not that one
    store = SnapshotStore(tmp_path / "snapshots", 2, chain.genesis.hash_fn)
    manifest = _snapshot(chain, store)
    chunks = _chunks(store, manifest)
    other = sha256 if chain.genesis.hash_algorithm is HashAlgorithm.SM3 else sm3
    renamed = peer_pb2.SnapshotManifest()
    renamed.CopyFrom(manifest)
    renamed.chunk_hashes[:] = [other(SNAPSHOT_CHUNK_TAG + c) for c in chunks]
    assert "chunk 0 of snapshot" in _refusal(chain, renamed, chunks)
