"""Pruning of the state tree in LevelDB: the stale queue and marks of ledger/smt_prune.py,
written in each block's own batch, and the sweep that lets a ledger start pruning.

A ledger records which tree nodes each block removed when `mpruning` is set: from its
creation when `[ledger] keep_heights` is above 0, or from the sweep that runs when a node
first opens an older (archive) ledger with pruning on. With keep_heights 0 it goes on
recording but deletes nothing. Blocks, certificates, records and the per-identifier history
are never pruned: only tree nodes of versions older than the kept heights go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import DIGEST_BYTES
from sparkchain.ledger import smt_nodes, smt_prune
from sparkchain.node import schema
from sparkchain.node.storage import TreeNodeStore

log = logging.getLogger(__name__)

SWEEP_BATCH_KEYS = 10_000  # tree nodes deleted per batch while sweeping


class LevelDBStaleIndex:
    """smt_prune.StaleIndex over the committed ledger."""

    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    def revive_mark(self, node_hash: bytes) -> int | None:
        raw = self._db.get(schema.stale_mark_key(node_hash))
        return None if raw is None else schema.height_from_bytes(raw)

    def is_stored(self, node_hash: bytes) -> bool:
        return self._db.get(schema.tree_node_key(node_hash)) is not None

    def due(self, through_height: int) -> Iterator[tuple[int, bytes]]:
        return queued(self._db, through_height)


def queued(db: plyvel.DB, through_height: int | None = None) -> Iterator[tuple[int, bytes]]:
    """The stale queue's (height, node hash) pairs, oldest height first; with
    `through_height`, those of the heights up to it."""
    stop = None if through_height is None else schema.stale_queue_key(through_height + 1)
    with db.iterator(start=schema.STALE_QUEUE, stop=stop) as entries:
        for key, raw in entries:
            if not key.startswith(schema.STALE_QUEUE):
                break
            height = schema.stale_queue_height(key)
            for node_hash in schema.stale_queue_hashes(raw):
                yield height, node_hash


def is_pruning(db: plyvel.DB) -> bool:
    """Whether the ledger records the tree nodes its blocks remove."""
    return db.get(schema.META_PRUNING) is not None


def oldest_state(db: plyvel.DB) -> int:
    """The oldest height whose state tree is stored (0: every height's)."""
    raw = db.get(schema.META_OLDEST_STATE)
    return 0 if raw is None else schema.height_from_bytes(raw)


def write_deletions(batch: plyvel.WriteBatch, step: smt_prune.PruneStep) -> None:
    """The first half of a commit's pruning: before the block's own writes."""
    delete = batch.delete
    for node_hash in step.delete_nodes:
        delete(schema.tree_node_key(node_hash))
    for height in sorted({height for height, _ in step.delete_queue}):
        delete(schema.stale_queue_key(height))  # due entries are always whole heights
    for node_hash in step.delete_marks:
        delete(schema.stale_mark_key(node_hash))


def write_removals(
    batch: plyvel.WriteBatch, step: smt_prune.PruneStep, height: int, oldest_before: int
) -> None:
    """The second half: after the block's new nodes, record what the block `height`
    removed and the nodes it wrote again."""
    if step.put_queue:
        batch.put(schema.stale_queue_key(height), b"".join(h for _, h in step.put_queue))
    mark = schema.height_bytes(height)
    for node_hash in step.put_marks:
        batch.put(schema.stale_mark_key(node_hash), mark)
    if step.oldest_provable != oldest_before:
        batch.put(schema.META_OLDEST_STATE, schema.height_bytes(step.oldest_provable))


def start_pruning(db: plyvel.DB, height: int, state_root: bytes) -> int:
    """Make an archive ledger a pruning one: delete every tree node that the state at
    `height` (the head) does not hold, then record removals from here on. Older heights'
    states are no longer provable. Returns the nodes deleted.

    Safe to interrupt: the oldest kept height is written first, so older proofs are refused
    from the first deletion on, and `mpruning` last, so a crash part way redoes the sweep,
    which deletes only nodes the head does not hold.
    """
    log.info("ledger_pruning_sweep", extra={"height": height})
    kept = smt_prune.reachable(TreeNodeStore(db), [state_root])
    db.put(schema.META_OLDEST_STATE, schema.height_bytes(height), sync=True)
    deleted = 0
    batch = db.write_batch()
    pending = 0
    with db.iterator(prefix=schema.TREE_NODE, include_value=False) as nodes:
        for key in nodes:
            if key[len(schema.TREE_NODE) :] in kept:
                continue
            batch.delete(key)
            deleted += 1
            pending += 1
            if pending == SWEEP_BATCH_KEYS:
                batch.write()
                batch, pending = db.write_batch(), 0
    batch.write()
    db.put(schema.META_PRUNING, b"1", sync=True)
    log.info("ledger_pruning_swept", extra={"height": height, "deleted_nodes": deleted})
    return deleted


def trim_stale_nodes(db: plyvel.DB) -> int:
    """Part of the upgrade to schema 5: store every tree node that a block removed and that
    is still kept (it has a schema 5 stale mark) trimmed, as commits now do
    (smt_nodes.trimmed). Runs before `upgrade_to_revive_marks` changes what marks mean.
    Idempotent. Returns the nodes rewritten."""
    if not is_pruning(db):
        return 0
    rewritten = 0
    batch = db.write_batch()
    with db.iterator(prefix=schema.STALE_MARK, include_value=False) as marks:
        for mark in marks:
            key = schema.tree_node_key(mark[len(schema.STALE_MARK) :])
            node = db.get(key)
            if node is None:
                continue
            try:
                trimmed = smt_nodes.trimmed(node)
            except (ValueError, IndexError):
                continue  # damage: `spark ledger verify` reports the node
            if trimmed != node:
                batch.put(key, trimmed)
                rewritten += 1
                if rewritten % SWEEP_BATCH_KEYS == 0:
                    batch.write()
                    batch = db.write_batch()
    batch.write()
    log.info("ledger_upgrade", extra={"to_schema": 5, "trimmed_tree_nodes": rewritten})
    return rewritten


def upgrade_to_revive_marks(db: plyvel.DB) -> None:
    """Upgrade a schema 5 ledger to 6, in one atomic batch that also says schema 6: the
    stale queue's entries of one height become one entry, and schema 5's marks (every
    removed node -> the last height that removed it; none once a block wrote it again)
    become revive marks (smt_prune): a node with a pending removal below its schema 5 mark
    came back before that mark; one with no mark came back after its last removal."""
    head = db.get(schema.META_HEAD)
    height = 0 if head is None else schema.head_from_bytes(head)[0]
    removals: dict[int, list[bytes]] = {}
    removed_at: dict[bytes, list[int]] = {}
    batch = db.write_batch(sync=True)
    hash_at = len(schema.stale_queue_key(0))  # schema 5: the height's key, then the hash
    with db.iterator(prefix=schema.STALE_QUEUE, include_value=False) as keys:
        for key in keys:
            if len(key) != hash_at + DIGEST_BYTES:
                raise SparkError(
                    ErrorCode.STORAGE_CORRUPT,
                    f"{schema.describe_key(key)} is not a schema 5 stale queue key",
                )
            at, node_hash = schema.stale_queue_height(key), key[hash_at:]
            batch.delete(key)
            removals.setdefault(at, []).append(node_hash)
            removed_at.setdefault(node_hash, []).append(at)
    with db.iterator(prefix=schema.STALE_MARK) as marks:
        last_removal = {key[1:]: schema.height_from_bytes(raw) for key, raw in marks}
    for at, hashes in removals.items():
        batch.put(schema.stale_queue_key(at), b"".join(hashes))
    for node_hash in last_removal.keys() - removed_at.keys():
        batch.delete(schema.stale_mark_key(node_hash))  # no pending removal: nothing to tell
    for node_hash, heights in removed_at.items():
        last = last_removal.get(node_hash)
        if last is None:
            revived = max(height, max(heights) + 1)
        elif min(heights) < last:
            revived = last  # written again between an earlier removal and `last`
        else:
            batch.delete(schema.stale_mark_key(node_hash))
            continue
        batch.put(schema.stale_mark_key(node_hash), schema.height_bytes(revived))
    batch.put(schema.META_SCHEMA_VERSION, b"6")
    batch.write()
    log.info(
        "ledger_upgrade",
        extra={"to_schema": 6, "queued_heights": len(removals), "removed_nodes": len(removed_at)},
    )


def height_pruned(height: int, oldest: int) -> SparkError:
    return SparkError(
        ErrorCode.HEIGHT_PRUNED,
        f"the state at height {height} is pruned: this node keeps the state tree from "
        f"height {oldest} on (blocks and history stay complete)",
    )
