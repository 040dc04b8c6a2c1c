"""Offline re-check of a node's whole ledger (`spark ledger verify`).

The stored chain is replayed from the genesis into a scratch ledger, block by block, with
the same code a validator uses for a proposal: linkage to the previous header, time,
`last_commit`, tx root, every tx's signature and rules, and the state root after
re-execution. Each stored certificate must commit its block with a quorum of the genesis
validators. A ledger that began from a state snapshot at height H (state sync) is replayed
from that snapshot instead of the genesis, once the snapshot is checked against the genesis
as a joining node checks it (node/snapshot_restore.py). At the end the stored records and
prefixes must be byte for byte those the replay produced, and the stored head must name the
last block. The first inconsistency stops the check and is reported with its height.

A pruning ledger ([ledger] keep_heights, node/pruning.py) is replayed recording removals
but pruning nothing; its stored tree must then be exactly the replay's nodes that the
kept heights' roots hold (none missing, none left over), its stale queue the replay's
entries newer than its oldest kept height, and its revive marks what the kept trees tell
(a pending removal's node is marked exactly when a later tree holds it again). Blocks,
certificates and history are compared in full: pruning never touches them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_SNAPSHOTS_KEPT
from sparkchain.ledger import blocks, smt_prune
from sparkchain.ledger.genesis import Genesis
from sparkchain.node import pruning, schema
from sparkchain.node.ledger import Ledger
from sparkchain.node.snapshot_restore import snapshot_change_heights
from sparkchain.node.snapshot_write import restore_snapshot
from sparkchain.node.snapshots import SnapshotStore
from sparkchain.node.storage import TreeNodeStore, holds_ledger, open_db, reporting_damage
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb

Progress = Callable[[int, int], None]  # (blocks checked, blocks in the chain)


@dataclass(frozen=True, slots=True)
class ChainReport:
    height: int  # the stored chain's last height
    checked: int  # blocks that passed every check (replayed after the base)
    problem: str | None = None  # the first inconsistency, None when the chain is sound
    problem_height: int | None = None
    # 0: the ledger began at the genesis; H: from a state snapshot at height H, which was
    # checked against the genesis and replayed from
    base_height: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_chain(
    ledger_dir: Path,
    genesis: Genesis,
    progress: Progress | None = None,
    scratch_dir: Path | None = None,
    *,
    verify_signatures: bool = True,
    snapshots_dir: Path | None = None,
) -> ChainReport:
    """Replay and compare the ledger at `ledger_dir`; never writes to it.

    `verify_signatures=False` skips the tx signatures (tests that only care about state).
    A ledger that began from a state snapshot (node/state_sync.py) is replayed from that
    snapshot, found in `snapshots_dir` (default: `snapshots` beside the ledger, as in a
    node home) and checked against the genesis first (node/snapshot_restore.py).
    """
    snapshots = SnapshotStore(
        snapshots_dir or ledger_dir.parent / "snapshots", MAX_SNAPSHOTS_KEPT, genesis.hash_fn
    )
    if not holds_ledger(ledger_dir):
        raise SparkError(ErrorCode.NOT_FOUND, f"{ledger_dir}: no ledger here")
    stored = open_db(ledger_dir, create=False)
    try:
        with reporting_damage(ledger_dir):
            prunes = pruning.is_pruning(stored)
        with tempfile.TemporaryDirectory(prefix="spark-verify-", dir=scratch_dir) as scratch:
            replay = Ledger.open(
                Path(scratch) / "replay",
                genesis,
                verify_signatures=verify_signatures,
                record_removals=prunes,
            )
            try:
                with reporting_damage(ledger_dir):
                    return _check(stored, replay, snapshots, progress or _no_progress)
            finally:
                replay.close()
    finally:
        stored.close()


def _no_progress(done: int, total: int) -> None:
    pass


def _check(
    stored: plyvel.DB, replay: Ledger, snapshots: SnapshotStore, progress: Progress
) -> ChainReport:
    genesis = replay.genesis
    head_raw = _get(stored, schema.META_HEAD)
    if head_raw is None:
        return ChainReport(0, 0, "the ledger has no head record", 0)
    head_height, head_hash, head_root = schema.head_from_bytes(head_raw)
    stored_genesis = _get(stored, schema.META_GENESIS_HASH)
    if stored_genesis != genesis.genesis_hash:
        return ChainReport(
            head_height,
            0,
            f"genesis hash: expected {genesis.genesis_hash.hex()} (genesis file) "
            f"got {(stored_genesis or b'').hex() or '(none)'} (ledger)",
            0,
        )
    raw_base = _get(stored, schema.META_BASE)
    base = 0 if raw_base is None else schema.height_from_bytes(raw_base)
    if base:
        problem = _restore_base(stored, replay, snapshots, base)
        if problem is not None:
            return ChainReport(head_height, 0, problem, base, base)
    progress(0, head_height - base)
    roots = {base: replay.state_root}  # by height, from the first state replayed
    for height in range(base + 1, head_height + 1):
        problem = _check_block(stored, replay, height)
        if problem is not None:
            return ChainReport(head_height, height - 1 - base, problem, height, base)
        roots[height] = replay.state_root
        progress(height - base, head_height - base)
    checked = head_height - base
    if replay.last_block_hash != head_hash or replay.state_root != head_root:
        return ChainReport(
            head_height,
            checked,
            f"head: expected block {replay.last_block_hash.hex()} with state root "
            f"{replay.state_root.hex()} got {head_hash.hex()} and {head_root.hex()}",
            head_height,
            base,
        )
    wanted = _expected_in(stored, replay, roots)
    if isinstance(wanted, str):
        return ChainReport(head_height, checked, wanted, head_height, base)
    problem = _compare_state(stored, replay, wanted, marks_apart=pruning.is_pruning(stored))
    if problem is not None:
        return ChainReport(head_height, checked, problem, head_height, base)
    return ChainReport(head_height, checked, base_height=base)


def _restore_base(
    stored: plyvel.DB, replay: Ledger, snapshots: SnapshotStore, base: int
) -> str | None:
    """Write the snapshot the ledger began from into the replay, checked against the
    genesis with the stored blocks of its header and validator changes."""
    manifest = snapshots.manifest(base)
    if manifest is None:
        return (
            f"the ledger began from a state snapshot at height {base}, which is not in "
            f"{snapshots.directory}: it cannot be re-checked"
        )
    try:
        chunks = [snapshots.chunk(base, i) for i in range(len(manifest.chunk_hashes))]
        changes = snapshot_change_heights(chunks, base)
        held = [_stored_block(stored, h) for h in (base, *changes)]
        restore_snapshot(replay, manifest, chunks, held[0], held[1:])
    except SparkError as error:
        return f"base snapshot {base}: {error.message}"
    return None


def _stored_block(stored: plyvel.DB, height: int) -> peer_pb2.CommittedBlock:
    block_bytes = _get(stored, schema.block_key(height))
    cert_raw = _get(stored, schema.certificate_key(height))
    if block_bytes is None or cert_raw is None:
        raise SparkError(ErrorCode.STORAGE_CORRUPT, f"block {height} or its certificate is missing")
    return peer_pb2.CommittedBlock(
        block=pb.Block.FromString(block_bytes), commit=blocks.decode_certificate(cert_raw)
    )


def _check_block(stored: plyvel.DB, replay: Ledger, height: int) -> str | None:
    block_bytes = _get(stored, schema.block_key(height))
    if block_bytes is None:
        return f"block {height} is missing"
    cert_raw = _get(stored, schema.certificate_key(height))
    if cert_raw is None:
        return f"block {height} has no certificate"
    try:
        pending = replay.validate_block(block_bytes)
        certificate = blocks.decode_certificate(cert_raw)
        if certificate.height != height or certificate.block_hash != pending.block_hash:
            return (
                f"certificate of block {height}: commits block {certificate.height} "
                f"({certificate.block_hash.hex()}), not {pending.block_hash.hex()}"
            )
        blocks.verify_commit_certificate(replay.chain_id, replay.validators, certificate)
        indexed = _get(stored, schema.block_hash_key(pending.block_hash))
        if indexed != schema.height_bytes(height):
            return f"block hash index: {pending.block_hash.hex()} does not lead to {height}"
        replay.commit_block(pending, certificate)
    except SparkError as error:
        return f"block {height}: {error}"
    return None


def _get(stored: plyvel.DB, key: bytes) -> bytes | None:
    """A read that checks the block's checksum, so damage is reported as such rather than
    as bytes that differ from the replay."""
    value: bytes | None = stored.get(key, verify_checksums=True)
    return value


KeyFilter = Callable[[bytes, bytes], bool]


def _expected_in(stored: plyvel.DB, replay: Ledger, roots: dict[int, bytes]) -> KeyFilter | str:
    """Which of the replay's keys a stored ledger must hold (all, unless it prunes), or
    the problem with its oldest kept height or its revive marks."""
    if not pruning.is_pruning(stored):
        return lambda key, value: True
    oldest = pruning.oldest_state(stored)
    last = max(roots)
    if oldest > last:
        return f"oldest kept state: height {oldest} is above the last block {last}"
    kept = _kept_checking_marks(stored, TreeNodeStore(replay.db), roots, oldest)
    if isinstance(kept, str):
        return kept
    tree, queue = schema.TREE_NODE, schema.STALE_QUEUE

    def expected(key: bytes, value: bytes) -> bool:
        namespace = key[:1]
        if namespace == tree:
            return key[1:] in kept
        if namespace == queue:
            return schema.stale_queue_height(key) > oldest
        return True

    return expected


def _kept_checking_marks(
    stored: plyvel.DB, tree: TreeNodeStore, roots: dict[int, bytes], oldest: int
) -> set[bytes] | str:
    """The nodes the kept heights' trees hold, found from the newest height down; on the
    way, each pending removal (queue entry above `oldest`) must have a revive mark above
    its height exactly when a later tree holds the node again (ledger/smt_prune.py: the
    mark is what keeps such a node when the removal falls due). Every mark must be of a
    stored node. A problem found is returned as text. (The marks depend on what the
    ledger had already pruned when a node came back, so they are checked by what they
    must tell rather than compared with the replay's.)"""
    pending: dict[int, list[bytes]] = {}
    for removed_at, node_hash in pruning.queued(stored):
        if removed_at > oldest:
            pending.setdefault(removed_at, []).append(node_hash)
    held: set[bytes] = set()  # the nodes of the trees above the height being looked at
    for height in range(max(roots), oldest - 1, -1):
        for node_hash in pending.get(height, ()):
            raw = stored.get(schema.stale_mark_key(node_hash))
            mark = None if raw is None else schema.height_from_bytes(raw)
            came_back = node_hash in held
            if (mark is not None and mark > height) != came_back:
                said = "no revive mark" if mark is None else f"a revive mark at {mark}"
                return (
                    f"tree node {node_hash.hex()} removed at height {height} has {said}, "
                    f"but {'a' if came_back else 'no'} later height holds it"
                )
        if height in roots:
            smt_prune.reachable(tree, [roots[height]], held)
    with stored.iterator(prefix=schema.STALE_MARK, include_value=False) as marks:
        for key in marks:
            if stored.get(schema.tree_node_key(key[1:])) is None:
                return f"{schema.describe_key(key)} is of a tree node the ledger does not hold"
    return held


def _compare_state(
    stored: plyvel.DB, replay: Ledger, wanted: KeyFilter, *, marks_apart: bool
) -> str | None:
    """Every stored key and value must be the replay's: records, prefixes, indexes,
    history, change lists and tree nodes are all derived from the blocks (of the tree,
    only what the kept heights hold; the oldest kept height and, with `marks_apart` (a
    pruning ledger), the revive marks are checked apart)."""
    apart = schema.STALE_MARK if marks_apart else None
    pairs = zip_longest(
        (
            item
            for item in stored.iterator(verify_checksums=True)
            if item[0] != schema.META_OLDEST_STATE and item[0][:1] != apart
        ),
        (item for item in replay.db.iterator() if item[0][:1] != apart and wanted(*item)),
    )
    for mine, expected in pairs:
        if mine == expected:
            continue
        if mine is not None and (expected is None or mine[0] < expected[0]):
            return f"{schema.describe_key(mine[0])} is stored but no block wrote it"
        assert expected is not None
        if mine is None or mine[0] != expected[0]:
            return f"{schema.describe_key(expected[0])} is missing from the ledger"
        return f"{schema.describe_key(mine[0])}: stored bytes differ from the replay"
    return None
