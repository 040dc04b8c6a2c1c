"""The node's one LevelDB (plyvel) and the small helpers every reader shares.

Options, chosen by measurement on a ledger of 1M identifiers (1.1 GB; CPU time per
operation of the calling thread, because the machine was shared while measuring;
bench/ledger_bench.py):

    options                                    resolve   commit (ids/s)   VmRSS
    plyvel defaults (8 MiB cache, no bloom)     ~16 µs       ~12,700      361 MB
    bloom 10, 64 MiB cache, 32 MiB write buf.   ~15 µs       ~13,700      409 MB
    same with a 128 / 256 MiB cache             ~12 µs       ~14,000      495 / 544 MB
    chosen: bloom 10, 32 MiB cache, 32 MiB wb   ~15 µs       ~13,700      371 MB
    same with a 16 MiB write buffer             ~16 µs       ~12,000      359 MB

- a 10-bit bloom filter: execution asks "does this identifier / tx id exist yet?" for every
  registration, almost always a miss, which the filter answers without reading a block;
- a 32 MiB block cache: uniformly random reads over 1M records (~280 MB of record blocks)
  miss any cache that fits the 500 MB RSS budget, so a larger one buys little; the upper
  levels of the state tree are cached decoded by smt.NodeCache instead. RSS also counts
  LevelDB's mmapped table pages (reclaimable page cache), which grow with the ledger;
- a 32 MiB write buffer: a block of 1,000 registrations writes ~1.6 MB, so most blocks land
  in the memtable without a compaction in the middle of a commit.
- 500 open files, although a 1M-identifier ledger has ~630 tables: LevelDB's table cache
  then reopens tables (~45 µs per state tree node read at 1M instead of ~25 µs with 4,000
  open files), but every open table stays mmapped and the pages reads touch count in
  VmRSS (RssFile rose from ~250-450 MB to ~700-750 MB with 4,000): the RSS budget wins.
Blocks stay 4 KiB and snappy-compressed: without compression a resolve costs ~2 µs less
but the ledger takes 50% more disk (measured at 300k identifiers: 349 vs 526 MB).
Every block is written with one `WriteBatch(sync=True)` (see node/ledger.py).
"""

from __future__ import annotations

from pathlib import Path

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node import schema

BLOOM_FILTER_BITS = 10
BLOCK_CACHE_BYTES = 32 * 1024 * 1024
WRITE_BUFFER_BYTES = 32 * 1024 * 1024
MAX_OPEN_FILES = 500


def open_db(path: Path, *, create: bool = True) -> plyvel.DB:
    if create:
        path.mkdir(parents=True, exist_ok=True)
    try:
        return plyvel.DB(
            str(path),
            create_if_missing=create,
            bloom_filter_bits=BLOOM_FILTER_BITS,
            lru_cache_size=BLOCK_CACHE_BYTES,
            write_buffer_size=WRITE_BUFFER_BYTES,
            max_open_files=MAX_OPEN_FILES,
        )
    except plyvel.IOError as exc:
        hint = (
            " (is a node running on it? LevelDB allows one process)" if "lock" in str(exc) else ""
        )
        raise SparkError(
            ErrorCode.UNAVAILABLE, f"{path}: cannot open the ledger: {exc}{hint}"
        ) from exc
    except plyvel.Error as exc:
        raise SparkError(ErrorCode.STORAGE_CORRUPT, f"{path}: {exc}") from exc


class TreeNodeStore:
    """The state tree's node store (smt.NodeStore): nodes by hash in the tree namespace.

    The upper levels are cached decoded by smt.NodeCache; below them LevelDB's block cache
    does the work.
    """

    def __init__(self, db: plyvel.DB) -> None:
        self._get = db.get

    def get(self, node_hash: bytes) -> bytes | None:
        node: bytes | None = self._get(schema.TREE_NODE + node_hash)
        return node


def key_after_prefix(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with `prefix` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
