"""State tree benchmark: the chosen 16-ary tree (node/smt.py) against the two alternatives
it was chosen over (bench/smt_binary.py: binary, and 16-ary hashed as 4 binary levels).

For each tree size (10k and 1M keys; quick: 10k and 100k), blocks of 1000 new random keys
are applied in one pass each:
- with an in-memory dict store, with the cost per key: nodes written and read (cache
  misses), SHA-256 calls, bytes written;
- with LevelDB behind the tree: apply (reading from LevelDB) + a synced WriteBatch of the
  new nodes, i.e. the tree's share of committing a block;
then proofs built/s (dict store and LevelDB), verified/s and their size. Baselines measured
in the same run: SHA-256 of a 65-byte node, LevelDB WriteBatch(1000, sync) puts.
Work is timed in process CPU time (the machine may be shared with other work; LevelDB's
compaction threads count too); the synced WriteBatch in wall-clock time (it waits for the
disk), so the commit row swings with the machine's load.
"""

from __future__ import annotations

import gc
import hashlib
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plyvel

from bench import smt_binary
from bench.report import Goal, print_table, rate
from bench.smt_binary_nodes import Layout
from bench.smt_binary_nodes import NodeCache as BinaryNodeCache
from sparkchain.ledger import smt

BLOCK_KEYS = 1000
PROOF_SAMPLE = 5000
GOAL_PER_S = 10_000
_TREE_NODE = b"t"  # stand-in for the ledger's tree-node key namespace
ROW_COMMIT = "update + synced WriteBatch keys/s, LevelDB"
ROW_PROOFS_BUILT = "proofs built/s, LevelDB"
ROW_PROOFS_VERIFIED = "proofs verified/s"
_ROWS_WITH_GOALS = (ROW_COMMIT, ROW_PROOFS_BUILT, ROW_PROOFS_VERIFIED)


@dataclass(frozen=True)
class Variant:
    name: str
    apply: Callable[[Any, bytes, dict[bytes, bytes | None], Any], Any]
    prove: Callable[[Any, bytes, bytes, Any], bytes]
    verify: Callable[[bytes, bytes, bytes | None, bytes], bool]
    new_cache: Callable[[], Any]
    hashes_of_node: Callable[[bytes], int]
    # loads the cached levels, as a node that has run for a while has them
    warm: Callable[[Any, bytes, Any], object] = lambda store, root, cache: None


def _binary_variant(name: str, layout: Layout) -> Variant:
    def hashes_of_node(encoded: bytes) -> int:
        if encoded[:1] != b"\x03":
            return 1  # a leaf
        _, occupied, leaf_map, _ = layout.decode(encoded)
        return layout.hash_count(occupied, leaf_map)

    return Variant(
        name,
        lambda store, root, changes, cache: smt_binary.apply(
            store, root, changes, cache, layout=layout
        ),
        lambda store, root, key, cache: smt_binary.prove(store, root, key, cache, layout=layout),
        smt_binary.verify_proof,
        BinaryNodeCache,
        hashes_of_node,
    )


def _flat_variant(name: str, cache_depth: int) -> Variant:
    return Variant(
        name,
        smt.apply,
        smt.prove,
        smt.verify_proof,
        lambda: smt.NodeCache(max_depth=cache_depth),
        lambda encoded: 1,
        smt.warm_cache,
    )


VARIANTS = (
    _binary_variant("binary", Layout(1)),
    _binary_variant("16-ary binary-hashed", Layout(4)),
    _flat_variant("16-ary flat, 4-level cache", 4),
    _flat_variant("16-ary flat, chosen: node/smt.py", smt.NodeCache().max_depth),
)


def run(quick: bool) -> None:
    sha_rate, put_rate = _baselines()
    print_table(
        "state tree baselines (this machine, this run)",
        ["baseline", "value"],
        [
            ["SHA-256 of a 65-byte node", rate(sha_rate)],
            ["LevelDB WriteBatch(1000, sync=True) puts", rate(put_rate)],
        ],
    )
    for size in (10_000, 100_000) if quick else (10_000, 1_000_000):
        columns = [_measure(variant, size, blocks=10 if quick else 20) for variant in VARIANTS]
        gc.collect()
        names = [row for row, _ in columns[0]]
        rows = [[name, *(dict(c)[name] for c in columns)] for name in names]
        chosen = dict(columns[-1])
        print_table(
            f"state tree with {size:,} keys: blocks of {BLOCK_KEYS} new keys",
            ["measure", *(v.name for v in VARIANTS)],
            rows,
            goals=[_goal(name, chosen) for name in names],
            caption="Goals apply to the chosen tree (last column). The commit row is only the "
            "tree's share of committing a block: it must leave room for the rest of the "
            "ledger's >= 10,000 identifiers/s (bench/ledger_bench.py measures the whole).",
        )


def _goal(name: str, chosen: dict[str, str]) -> Goal:
    if name in _ROWS_WITH_GOALS:
        figure = float(chosen[name].replace(",", "").removesuffix("/s"))
        return f">= {GOAL_PER_S:,}/s", figure >= GOAL_PER_S
    return "", None


def _baselines() -> tuple[float, float]:
    node = bytes(65)
    sha = hashlib.sha256
    count = 200_000
    start = time.process_time()
    for _ in range(count):
        sha(node).digest()
    sha_rate = count / (time.process_time() - start)
    rng = random.Random(1)
    batches = [[rng.randbytes(33) for _ in range(1000)] for _ in range(20)]
    with _LevelDB() as db:
        start = time.perf_counter()
        for batch in batches:
            with db.write_batch(sync=True) as wb:
                for k in batch:
                    wb.put(k, node)
        put_rate = 20_000 / (time.perf_counter() - start)
    return sha_rate, put_rate


def _measure(variant: Variant, size: int, blocks: int) -> list[tuple[str, str]]:
    rng = random.Random(size)
    present = [rng.randbytes(32) for _ in range(size)]
    store: dict[bytes, bytes] = {}
    root = smt.EMPTY_ROOT
    for start in range(0, size, 100_000):
        chunk: dict[bytes, bytes | None] = {k: k[:8] for k in present[start : start + 100_000]}
        update = variant.apply(store, root, chunk, None)
        store.update(update.new_nodes)
        root = update.root
    cache = variant.new_cache()
    variant.warm(store, root, cache)
    spent = 0.0
    written = read = hashed = written_bytes = 0
    for i in range(blocks + 3):
        changes = _block(rng)
        start = time.process_time()
        update = variant.apply(store, root, changes, cache)
        elapsed = time.process_time() - start
        store.update(update.new_nodes)
        root = update.root
        if i >= 3:  # the first blocks warm the cache
            spent += elapsed
            written += len(update.new_nodes)
            read += update.nodes_read
            written_bytes += sum(len(v) for v in update.new_nodes.values())
            hashed += sum(variant.hashes_of_node(v) for v in update.new_nodes.values())
    keys = blocks * BLOCK_KEYS
    sample = rng.sample(present, PROOF_SAMPLE)
    built, proofs = _timed(sample, lambda k: variant.prove(store, root, k, cache))
    pairs = list(zip(sample, proofs, strict=True))
    verified, ok = _timed(pairs, lambda p: variant.verify(root, p[0], p[0][:8], p[1]))
    assert all(ok), f"{variant.name}: a proof failed to verify"
    absent = [variant.prove(store, root, rng.randbytes(32), cache) for _ in range(1000)]
    cache_size = f"{len(cache):,}"
    if hasattr(cache, "payload_bytes"):
        cache_size += f" ({cache.payload_bytes() / 1e6:.1f} MB)"
    leveldb = _measure_leveldb(variant, store, root, rng, blocks, sample)
    return [
        ("update keys/s, dict store", rate(keys / spent)),
        ("  nodes written / read per key", f"{written / keys:.2f} / {read / keys:.2f}"),
        ("  SHA-256 per key", f"{hashed / keys:.1f}"),
        ("  bytes written per key", f"{written_bytes / keys:,.0f}"),
        ("  cache entries (payload)", cache_size),
        ("update keys/s, LevelDB store", rate(leveldb.update)),
        (ROW_COMMIT, rate(leveldb.update_and_write)),
        ("  LevelDB reads per key", f"{leveldb.reads_per_key:.2f}"),
        ("proofs built/s, dict store", rate(built)),
        (ROW_PROOFS_BUILT, rate(leveldb.proofs)),
        (ROW_PROOFS_VERIFIED, rate(verified)),
        ("proof bytes, present / absent", f"{_mean_len(proofs):.0f} / {_mean_len(absent):.0f}"),
    ]


@dataclass(frozen=True)
class _LevelDBFigures:
    update: float  # keys/s, apply alone (CPU time, LevelDB's compaction threads included)
    update_and_write: float  # keys/s, apply + synced WriteBatch (wall clock)
    reads_per_key: float
    proofs: float  # built/s (CPU time)


def _measure_leveldb(
    variant: Variant,
    store: dict[bytes, bytes],
    root: bytes,
    rng: random.Random,
    blocks: int,
    sample: list[bytes],
) -> _LevelDBFigures:
    """The tree in LevelDB: blocks applied and committed, then proofs."""
    with _LevelDB() as db:
        nodes = list(store.items())
        store.clear()  # halves the peak memory at 1M keys
        for start in range(0, len(nodes), 100_000):
            with db.write_batch() as wb:
                for node_hash, encoded in nodes[start : start + 100_000]:
                    wb.put(_TREE_NODE + node_hash, encoded)
        del nodes
        db.compact_range()  # as a node that has run for a while, not one just bulk-loaded
        leveldb_store = _LevelDBNodes(db)
        cache = variant.new_cache()
        variant.warm(leveldb_store, root, cache)
        applying = writing = 0.0
        reads = 0
        for i in range(blocks + 3):
            changes = _block(rng)
            start = time.process_time()
            update = variant.apply(leveldb_store, root, changes, cache)
            applying_now = time.process_time() - start
            start = time.perf_counter()
            with db.write_batch(sync=True) as wb:
                for node_hash, encoded in update.new_nodes.items():
                    wb.put(_TREE_NODE + node_hash, encoded)
            if i >= 3:
                applying += applying_now
                writing += time.perf_counter() - start
                reads += update.nodes_read
            root = update.root
        built, _ = _timed(sample, lambda k: variant.prove(leveldb_store, root, k, cache))
    keys = blocks * BLOCK_KEYS
    return _LevelDBFigures(keys / applying, keys / (applying + writing), reads / keys, built)


def _block(rng: random.Random) -> dict[bytes, bytes | None]:
    return {rng.randbytes(32): rng.randbytes(40) for _ in range(BLOCK_KEYS)}


class _LevelDBNodes:
    def __init__(self, db: plyvel.DB) -> None:
        self._get = db.get

    def get(self, node_hash: bytes) -> bytes | None:
        node: bytes | None = self._get(_TREE_NODE + node_hash)
        return node


class _LevelDB:
    """A scratch LevelDB in a temporary folder, removed on exit."""

    def __enter__(self) -> plyvel.DB:
        self._dir = tempfile.mkdtemp(prefix="smt-bench-")
        self._db = plyvel.DB(
            str(Path(self._dir) / "db"),
            create_if_missing=True,
            bloom_filter_bits=10,
            lru_cache_size=64 << 20,
            write_buffer_size=16 << 20,
        )
        return self._db

    def __exit__(self, *exc: object) -> None:
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _timed(items: Sequence[Any], fn: Callable[[Any], Any]) -> tuple[float, list[Any]]:
    start = time.process_time()
    out = [fn(x) for x in items]
    return len(items) / (time.process_time() - start), out


def _mean_len(blobs: list[bytes]) -> float:
    return sum(map(len, blobs)) / len(blobs)
