"""Pruning benchmark (issue 13 part 5): disk bytes per identifier with and without pruning.

One run fills two ledgers with the same chain, blocks of one RegisterBatch of 1000 new
identifiers as bench/ledger_bench.py fills its own (1M identifiers; quick: 20k): one
archive ledger (keep_heights 0, every height's state tree kept) and one pruning ledger
(keep_heights KEEP_HEIGHTS; quick: QUICK_KEEP_HEIGHTS). Each is measured:
    - disk bytes per identifier once fully compacted (goal ≤ 400 B pruned): the ledger's
      live entries copied into a fresh LevelDB with the node's options (`compacted_copy`),
      what compaction converges to; beside it the ledger directory as left after
      `compact_range()`, which flushes the memtable but never rewrites LevelDB's deepest
      level (so deleted and rewritten tree nodes flushed there stay in its tables: at
      20k pruned, where everything fits in the memtable, 751 B/id as left against 365 in
      the compacted copy; at 1M, keep_heights 100, 404-407 against 395);
    - of which the state tree (namespace `t`) and the stale queue and marks (`s`, `u`),
      as uncompressed key and value bytes;
    - ids committed/s over the last MEASURED_BLOCKS blocks (build + synced commit,
      signatures excluded): what recording and pruning cost per block;
    - where the bytes go (`namespace_bytes`): key + value bytes of every LevelDB key
      namespace (node/schema.py) per identifier, uncompressed, and each namespace's share
      of the compacted copy's tables (LevelDB compresses blocks with snappy).

Measured at 1M on 2026-12-07, keep_heights 100, schema 6: 395.4 B/id fully compacted (goal
400 met; 404.2 to 406.9 as left after compact_range), committing 5,319 ids/s over the last
20 blocks (the archive ledger 8,721 in the same run): on disk the state tree 305 (uncompressed 286:
the head's tree 187, of which leaves 98, and older heights' internal nodes 99, stored
trimmed), the stale queue 7.5 (one entry per height; schema 5's queue key and mark per
removed node took 20 and gave 408.4 B/id), records 38, history 21, blocks 9.5, owner index
8.7, change lists 5.1; the archive ledger 1,310 B/id. What older heights cost is about 1 MB
per kept height at 1M (the nodes each block of 1,000 new ids rewrites), so it is K, not the
chain's length, that sets it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import plyvel

from bench.ledger_bench import BLOCK_IDS, Writer, bench_genesis
from bench.report import Goal, print_table, rate
from sparkchain.identifiers.tags import SMT_LEAF
from sparkchain.ledger.smt_nodes import check_inner
from sparkchain.ledger.smt_prune import reachable
from sparkchain.node import schema
from sparkchain.node.ledger import Ledger
from sparkchain.node.storage import TreeNodeStore, open_db

KEEP_HEIGHTS = 100
QUICK_KEEP_HEIGHTS = 5
MEASURED_BLOCKS = 20
COPY_BATCH_KEYS = 10_000
GOAL_PRUNED_BYTES_PER_ID = 400


@dataclass(frozen=True)
class NamespaceBytes:
    entries: int
    key_bytes: int
    value_bytes: int
    disk_bytes: int  # its share of the compacted copy's tables (LevelDB's estimate)

    @property
    def total(self) -> int:
        return self.key_bytes + self.value_bytes


def namespace_bytes(db: plyvel.DB, compacted: plyvel.DB) -> dict[bytes, NamespaceBytes]:
    """Entries, key bytes and value bytes of every namespace (the key's first byte) of a
    ledger, uncompressed, in one scan; and each namespace's size in the tables of
    `compacted`, the ledger's compacted copy."""
    counts: dict[bytes, list[int]] = {}
    with db.iterator() as entries:
        for key, value in entries:
            tally = counts.get(key[:1])
            if tally is None:
                tally = counts[key[:1]] = [0, 0, 0]
            tally[0] += 1
            tally[1] += len(key)
            tally[2] += len(value)
    namespaces = sorted(counts)
    on_disk = compacted.approximate_sizes(*((n, bytes([n[0] + 1])) for n in namespaces))
    return {
        namespace: NamespaceBytes(*counts[namespace], disk)
        for namespace, disk in zip(namespaces, on_disk, strict=True)
    }


@dataclass
class TreePart:
    nodes: int = 0
    stored_bytes: int = 0  # key + value
    leaf_key_bytes: int = 0  # of an internal node: the unhashed trailer of its leaf keys


def tree_parts(db: plyvel.DB) -> dict[str, TreePart]:
    """The stored state tree split into the head's tree (live) and the nodes only older kept
    heights hold, each into leaves and internal nodes, uncompressed."""
    _, _, root = schema.head_from_bytes(db.get(schema.META_HEAD))
    live = reachable(TreeNodeStore(db), [root])
    parts: dict[str, TreePart] = {}
    with db.iterator(prefix=schema.TREE_NODE) as nodes:
        for key, node in nodes:
            leaf = node[:1] == SMT_LEAF
            name = ("head's tree" if key[1:] in live else "older heights only") + (
                ", leaves" if leaf else ", internal nodes"
            )
            part = parts.setdefault(name, TreePart())
            part.nodes += 1
            part.stored_bytes += len(key) + len(node)
            if not leaf:
                part.leaf_key_bytes += len(node) - check_inner(node)[2]
    return dict(sorted(parts.items()))


@dataclass(frozen=True)
class DiskFigures:
    keep_heights: int
    size: int
    disk_bytes: int
    tree_bytes: int
    stale_index_bytes: int
    commit_per_s: float
    commit_per_cpu_s: float  # of the calling thread: what the code costs on a shared machine
    oldest_state: int
    namespaces: dict[bytes, NamespaceBytes]
    compacted_bytes: int  # the compacted copy's directory
    tree: dict[str, TreePart]

    def per_id(self, total: int) -> float:
        return total / self.size


def compacted_copy(db: plyvel.DB, target: Path) -> plyvel.DB:
    """A fresh LevelDB at `target`, opened with the node's options, holding exactly the live
    entries of `db`, each written once and flushed to tables: the ledger as compaction
    leaves it once every level is merged (LevelDB's CompactRange never rewrites its deepest
    level, where deleted entries flushed from the memtable stay)."""
    copy = open_db(target)
    batch = copy.write_batch()
    pending = 0
    with db.iterator() as entries:
        for key, value in entries:
            batch.put(key, value)
            pending += 1
            if pending == COPY_BATCH_KEYS:
                batch.write()
                batch, pending = copy.write_batch(), 0
    batch.write()
    copy.compact_range()  # the memtable into tables
    return copy


def fill_and_measure(
    path: Path, size: int, keep_heights: int, progress: Callable[[str], None]
) -> DiskFigures:
    started = time.perf_counter()
    with Ledger.open(
        path, bench_genesis(), verify_signatures=False, keep_heights=keep_heights
    ) as ledger:
        writer = Writer(ledger)
        blocks = size // BLOCK_IDS
        timed = cpu = 0.0
        for block in range(blocks):
            txs = writer.batch_txs(block * BLOCK_IDS)
            cpu_before = time.thread_time()
            spent = writer.commit(txs)
            if block >= blocks - MEASURED_BLOCKS:
                timed += spent
                cpu += time.thread_time() - cpu_before
            if block and block % 100 == 0:
                progress(
                    f"keep_heights {keep_heights}: {block * BLOCK_IDS:,} ids "
                    f"({time.perf_counter() - started:.0f} s)"
                )
        ledger.db.compact_range()
        tree_bytes = _raw_bytes(ledger, schema.TREE_NODE)
        stale_bytes = _raw_bytes(ledger, schema.STALE_QUEUE) + _raw_bytes(ledger, schema.STALE_MARK)
        oldest = ledger.oldest_state
        copy_path = path.with_name(path.name + "-compacted")
        copy = compacted_copy(ledger.db, copy_path)
        try:
            namespaces = namespace_bytes(ledger.db, copy)
            tree = tree_parts(ledger.db)
        finally:
            copy.close()
    disk = _directory_bytes(path)
    compacted = _directory_bytes(copy_path)
    shutil.rmtree(copy_path)
    measured = min(MEASURED_BLOCKS, blocks) * BLOCK_IDS
    return DiskFigures(
        keep_heights,
        size,
        disk,
        tree_bytes,
        stale_bytes,
        measured / timed,
        measured / cpu,
        oldest,
        namespaces,
        compacted,
        tree,
    )


def _directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _raw_bytes(ledger: Ledger, namespace: bytes) -> int:
    """Keys and values of a namespace, uncompressed (LevelDB's approximate sizes are too
    coarse for a namespace much smaller than its tables)."""
    with ledger.db.iterator(prefix=namespace) as entries:
        return sum(len(key) + len(value) for key, value in entries)


def run(quick: bool) -> None:
    # SPARK_PRUNE_BENCH_IDS: another size (two fills of 1M take about half an hour here)
    size = int(os.environ.get("SPARK_PRUNE_BENCH_IDS", 20_000 if quick else 1_000_000))
    keep = QUICK_KEEP_HEIGHTS if quick else KEEP_HEIGHTS

    def progress(message: str) -> None:
        print(f"  [prune_bench] {message}", flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="prune-bench-") as tmp:
        for keep_heights in (0, keep):
            path = Path(tmp) / f"keep-{keep_heights}"
            results.append(fill_and_measure(path, size, keep_heights, progress))
            shutil.rmtree(path)
    rows: list[list[object]] = []
    goals: list[Goal] = []
    for figures in results:
        kind = (
            "archive (keep_heights 0)"
            if figures.keep_heights == 0
            else f"pruned (keep_heights {figures.keep_heights}, state kept from height "
            f"{figures.oldest_state})"
        )
        at = f"at {size:,}"
        goal: Goal = ("-", None)
        if figures.keep_heights:
            per_id = figures.per_id(figures.compacted_bytes)
            goal = (f"≤ {GOAL_PRUNED_BYTES_PER_ID} B", per_id <= GOAL_PRUNED_BYTES_PER_ID)
        rows.append(
            [
                f"disk bytes per identifier, fully compacted, {kind}, {at}",
                f"{figures.per_id(figures.compacted_bytes):,.0f} B",
                f"as left after compact_range(): {figures.per_id(figures.disk_bytes):,.0f} B",
            ]
        )
        goals.append(goal)
        rows.append(
            [
                f"  state tree nodes (uncompressed), {kind}",
                f"{figures.per_id(figures.tree_bytes):,.0f} B",
                f"stale queue + marks {figures.per_id(figures.stale_index_bytes):,.0f} B",
            ]
        )
        goals.append(("-", None))
        rows.append(
            [
                f"ids committed/s, RegisterBatch, {kind}, last {MEASURED_BLOCKS} blocks",
                rate(figures.commit_per_s),
                f"{rate(figures.commit_per_cpu_s)} per thread CPU-s; build + synced commit",
            ]
        )
        goals.append(("-", None))
    print_table(
        "Pruning: disk per identifier after compaction, and commit cost",
        ["measure", "figure", "note"],
        rows,
        goals=goals,
        caption=(
            f"Blocks of one RegisterBatch of {BLOCK_IDS} new ids; fully compacted: the "
            "ledger's live entries copied into a fresh LevelDB (compaction's limit); "
            "namespaces as uncompressed key + value bytes."
        ),
    )
    for figures in results:
        print_namespaces(figures)
        print_tree_parts(figures)


def print_tree_parts(figures: DiskFigures) -> None:
    rows = [
        [
            name,
            f"{part.nodes:,}",
            f"{figures.per_id(part.stored_bytes):,.1f}",
            f"{figures.per_id(part.leaf_key_bytes):,.1f}",
        ]
        for name, part in figures.tree.items()
    ]
    print_table(
        f"State tree nodes, keep_heights {figures.keep_heights}, at {figures.size:,} ids",
        ["part", "nodes", "B/id", "of which leaf keys in parents, B/id"],
        rows,
        caption=(
            "Uncompressed key + value bytes; leaf keys: the unhashed trailer of internal "
            "nodes (ledger/smt_nodes.py), a second copy of each leaf child's key."
        ),
    )


def print_namespaces(figures: DiskFigures) -> None:
    """Where one ledger's bytes go: each namespace's key + value bytes per identifier."""
    rows: list[list[object]] = []
    raw = sum(n.total for n in figures.namespaces.values())
    for namespace, tally in sorted(
        figures.namespaces.items(), key=lambda item: item[1].total, reverse=True
    ):
        name = schema.NAMESPACE_NAMES.get(namespace, "unknown")
        rows.append(
            [
                f"{namespace.decode(errors='replace')}  {name}",
                f"{tally.entries:,}",
                f"{figures.per_id(tally.key_bytes):,.1f}",
                f"{figures.per_id(tally.value_bytes):,.1f}",
                f"{figures.per_id(tally.total):,.1f}",
                f"{100 * tally.total / raw:.1f}%" if raw else "-",
                f"{figures.per_id(tally.disk_bytes):,.1f}",
            ]
        )
    estimated = sum(n.disk_bytes for n in figures.namespaces.values())
    rows.append(
        [
            "all namespaces",
            "",
            "",
            "",
            f"{figures.per_id(raw):,.1f}",
            "",
            f"{figures.per_id(estimated):,.1f}",
        ]
    )
    for label, total in (
        ("compacted copy's directory", figures.compacted_bytes),
        ("ledger directory as left", figures.disk_bytes),
    ):
        rows.append([label, "", "", "", "", "", f"{figures.per_id(total):,.1f}"])
    print_table(
        f"Where the bytes go, keep_heights {figures.keep_heights}, at {figures.size:,} ids",
        ["namespace", "entries", "key B/id", "value B/id", "B/id", "share", "disk B/id"],
        rows,
        caption=(
            "Key + value bytes per identifier, uncompressed; disk: LevelDB's estimate of each "
            "namespace's share of the compacted copy's tables (snappy-compressed)."
        ),
    )
