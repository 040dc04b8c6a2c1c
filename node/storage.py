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
config.toml's [storage] block_cache_mb and tree_cache_nodes change the two cache bounds
(node/config.py); the defaults are the ones chosen above.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import DEFAULT_BLOCK_CACHE_MB, LEVELDB_MAX_OPEN_FILES
from sparkchain.node import schema

BLOOM_FILTER_BITS = 10
BLOCK_CACHE_BYTES = DEFAULT_BLOCK_CACHE_MB * 1024 * 1024  # config.toml [storage] block_cache_mb
WRITE_BUFFER_BYTES = 32 * 1024 * 1024
# how much of the end of LevelDB's info log is read for the name of a damaged file
INFO_LOG_TAIL_BYTES = 64 * 1024


# the files that make a directory a LevelDB (its info log LOG and its LOCK do not: LevelDB
# writes those before anything else, so a crash while creating a ledger can leave them alone)
_LEDGER_FILE_PATTERNS = ("CURRENT", "MANIFEST-*", "*.ldb", "*.sst", "*.log")
# LevelDB's IOErrors that are not damage, and what to check instead
_NOT_DAMAGE = {
    "lock": "is a node running on it? LevelDB allows one process",
    "Permission denied": "check the owner and mode of the directory and its files",
}


def holds_ledger(path: Path) -> bool:
    """Whether `path` holds any of a LevelDB's files (even a damaged one's)."""
    return any(next(path.glob(pattern), None) is not None for pattern in _LEDGER_FILE_PATTERNS)


def resync_advice(path: Path) -> str:
    """The recovery from a damaged ledger at `path`, for every STORAGE_CORRUPT about it."""
    # a node's ledger is HOME/data/ledger (node/home.py); a copy elsewhere names no home
    home = str(path.parent.parent) if path.parts[-2:] == ("data", "ledger") else "HOME"
    return (
        f"the ledger is damaged: stop the node and run `spark node resync --home {home}`, "
        "which moves it aside so that the node fetches the chain again from its peers "
        "(a chain of one node has none: restore a backup)"
    )


def storage_corrupt(path: Path, detail: object) -> SparkError:
    return SparkError(ErrorCode.STORAGE_CORRUPT, f"{path}: {detail}; {resync_advice(path)}")


@contextlib.contextmanager
def reporting_damage(path: Path) -> Iterator[None]:
    """Turn LevelDB's errors while reading the ledger at `path` into STORAGE_CORRUPT with the
    recovery, rather than a traceback (LevelDB's own details are in `path`/LOG)."""
    try:
        yield
    except plyvel.Error as exc:
        raise _damage_reported(path, exc) from exc


def open_db(
    path: Path, *, create: bool = True, block_cache_bytes: int = BLOCK_CACHE_BYTES
) -> plyvel.DB:
    """Open the LevelDB at `path`, with paranoid checks: damage found on open (a log record
    that fails its checksum, a table LevelDB cannot read) is an error, never a ledger that
    silently ends earlier. A new LevelDB is created only when `create` and the directory
    holds none of LevelDB's files: a ledger that lost its CURRENT file is damaged, not new.
    """
    existing = holds_ledger(path)
    if existing and not (path / "CURRENT").is_file():
        raise storage_corrupt(path, "LevelDB files but no CURRENT file")
    if create and not existing:
        path.mkdir(parents=True, exist_ok=True)
    try:
        return plyvel.DB(
            str(path),
            create_if_missing=create and not existing,
            paranoid_checks=True,
            bloom_filter_bits=BLOOM_FILTER_BITS,
            lru_cache_size=block_cache_bytes,
            write_buffer_size=WRITE_BUFFER_BYTES,
            max_open_files=LEVELDB_MAX_OPEN_FILES,  # counted in node/descriptors.py
        )
    except plyvel.IOError as exc:
        message = _leveldb_message(exc)
        # not damage: another process holds the ledger, or this user may not open it
        for cause, hint in _NOT_DAMAGE.items():
            if cause in message:
                raise SparkError(
                    ErrorCode.UNAVAILABLE, f"{path}: cannot open the ledger: {message} ({hint})"
                ) from exc
        raise storage_corrupt(path, f"cannot open the ledger: {message}") from exc
    except plyvel.Error as exc:
        raise _damage_reported(path, exc) from exc


def ledger_in_use(path: Path) -> bool:
    """Whether a process holds the LevelDB lock of the ledger at `path` (a running node),
    asked the way LevelDB takes it (fcntl), so it works on a ledger too damaged to open."""
    try:
        fd = os.open(path / "LOCK", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing it lets go of the lock, if we took it
    return False


def _damage_reported(path: Path, exc: plyvel.Error) -> SparkError:
    damaged = _file_named_in_info_log(path)
    where = f" in {damaged}" if damaged else f" (see {path / 'LOG'})"
    return storage_corrupt(path, f"LevelDB reports damage{where}: {_leveldb_message(exc)}")


def _file_named_in_info_log(path: Path) -> str | None:
    """The damaged file, when LevelDB's info log (`path`/LOG) named one last: it does for
    what it meets while recovering a log or a manifest, not for a damaged table read."""
    try:
        with (path / "LOG").open("rb") as info_log:
            info_log.seek(0, os.SEEK_END)
            info_log.seek(max(0, info_log.tell() - INFO_LOG_TAIL_BYTES))
            tail = info_log.read().decode(errors="replace")
    except OSError:
        return None
    named = re.compile(re.escape(str(path)) + r"/[^\s:]+")
    for line in reversed(tail.splitlines()):
        if "Corruption" in line or "error" in line.lower():
            found = named.search(line)
            if found:
                return found.group()
    return None


def _leveldb_message(exc: plyvel.Error) -> str:
    raw = exc.args[0] if exc.args else exc
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


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
