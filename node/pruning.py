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
from sparkchain.ledger import smt_nodes, smt_prune
from sparkchain.node import schema
from sparkchain.node.storage import TreeNodeStore

log = logging.getLogger(__name__)

SWEEP_BATCH_KEYS = 10_000  # tree nodes deleted per batch while sweeping


class LevelDBStaleIndex:
    """smt_prune.StaleIndex over the committed ledger."""

    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    def stale_mark(self, node_hash: bytes) -> int | None:
        raw = self._db.get(schema.stale_mark_key(node_hash))
        return None if raw is None else schema.height_from_bytes(raw)

    def due(self, through_height: int) -> Iterator[tuple[int, bytes]]:
        stop = schema.STALE_QUEUE + schema.height_bytes(through_height + 1)
        with self._db.iterator(start=schema.STALE_QUEUE, stop=stop, include_value=False) as entries:
            for key in entries:
                yield schema.stale_queue_entry(key)


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
    for height, node_hash in step.delete_queue:
        delete(schema.stale_queue_key(height, node_hash))
    for node_hash in step.delete_marks:
        delete(schema.stale_mark_key(node_hash))


def write_removals(batch: plyvel.WriteBatch, step: smt_prune.PruneStep, oldest_before: int) -> None:
    """The second half: after the block's new nodes, record what the block removed."""
    put = batch.put
    for height, node_hash in step.put_queue:
        put(schema.stale_queue_key(height, node_hash), b"")
        put(schema.stale_mark_key(node_hash), schema.height_bytes(height))
    if step.oldest_provable != oldest_before:
        put(schema.META_OLDEST_STATE, schema.height_bytes(step.oldest_provable))


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
    is still kept (it has a stale mark) trimmed, as commits now do (smt_nodes.trimmed).
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


def height_pruned(height: int, oldest: int) -> SparkError:
    return SparkError(
        ErrorCode.HEIGHT_PRUNED,
        f"the state at height {height} is pruned: this node keeps the state tree from "
        f"height {oldest} on (blocks and history stay complete)",
    )
