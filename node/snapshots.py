"""State snapshots (issue 13 part 4, DESIGN §12): taken every `[snapshots] interval` blocks,
kept on disk, served to joining nodes (Peer.ListSnapshots / Peer.GetSnapshotChunk).

What a snapshot at height H holds: the state right after block H that the state tree
commits to (every record, every prefix and the validator schedule) with the tree's nodes
under H's state root (checked by hashing, which is much cheaper than rebuilding the tree:
ledger/smt_walk.py), plus the validator sets the chain scheduled so far (`v` keys: the
joining node needs them to find the headers that changed the set since the genesis).
Everything else a node stores is either derived from those (owner and children indexes:
rebuilt on restore) or about blocks below H (history, tx index, change lists: not
carried; node/ledger_reads.py refuses those reads on a restored ledger, naming its base).

Format 2 (taken since 2026-12-07): the entries (storage key, value) in key order (the
schedule key, then the `p`, `r`, `t` and `v` namespaces), of the tree only its internal
nodes (and the root, whatever it is): a leaf is H(leaf tag, tree key, value hash) of a
record, prefix or the schedule, and its parent names its key, so the joining node builds
each leaf from the entry as it checks it (node/snapshot_restore.py), and the snapshot is a
fifth smaller. Format 1, still read (a node's base snapshot or an older peer's), carries
the leaves too. A chunk is a pb SnapshotEntries (keys and values, serialized
deterministically: decoding one is a single call into protobuf's C code) that closes at the
first entry that takes it past SNAPSHOT_CHUNK_BYTES. So two nodes with the same state cut
the same chunks, and a joining node can fetch each chunk from any peer offering that
manifest. A chunk is named in the
manifest by H(SNAPSHOT_CHUNK_TAG || chunk), H being the chain's hash (SHA-256, or SM3 when
the genesis chose it: identifiers/hashing.py), the same that built its blocks and state tree.

On disk, HOME/data/snapshots/<height, 12 digits>/ holds `chunk-<index>` files and
`manifest` (a pb SnapshotManifest), written last, into a `.tmp` folder renamed when whole:
a crash leaves a `.tmp` folder (removed at the next start), never a half snapshot. The
file `base` names the snapshot a state-synced node began from, which is kept beyond `keep`
(`spark ledger verify` re-checks the ledger from it).

Taking one is off the consensus path: at the commit of H the taker opens a LevelDB snapshot
(a consistent view, cheap) and writes the files from it in its own thread, paced
(node/thread_pacing.py). It still costs the chain some time, since every validator snapshots
the same height on shared cores: on a 4+1 testnet on 2 cores the three blocks after a
snapshot height took 160-215 ms longer than usual with the pacing, 520-560 ms without.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import plyvel
from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction
from sparkchain.identifiers.limits import (
    MAX_SNAPSHOTS_LISTED,
    SNAPSHOT_CHUNK_BYTES,
    SNAPSHOT_SORT_PART_NODES,
)
from sparkchain.identifiers.tags import SMT_LEAF, SNAPSHOT_CHUNK_TAG
from sparkchain.ledger.smt_walk import reachable_nodes
from sparkchain.node import schema
from sparkchain.node.storage import TreeNodeStore
from sparkchain.node.thread_pacing import ThreadPacer
from sparkchain.proto import peer_pb2

log = logging.getLogger("spark.snapshots")

SNAPSHOT_FORMAT_WITH_LEAVES = 1
SNAPSHOT_FORMAT = 2
SNAPSHOT_FORMATS_READ = (SNAPSHOT_FORMAT_WITH_LEAVES, SNAPSHOT_FORMAT)
MANIFEST_FILE = "manifest"
BASE_FILE = "base"


class StateView(Protocol):
    """A plyvel DB or a plyvel Snapshot of one."""

    def get(self, key: bytes) -> bytes | None: ...

    def iterator(self, *, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class PacedView:
    """A StateView whose reads pace the thread that makes them (node/thread_pacing.py)."""

    def __init__(self, view: StateView, pacer: ThreadPacer) -> None:
        self._view = view
        self._pacer = pacer

    def get(self, key: bytes) -> bytes | None:
        self._pacer.pace()
        return self._view.get(key)

    def iterator(self, *, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._pacer.paced(self._view.iterator(prefix=prefix))


def _no_pause() -> None:
    pass


def snapshot_entries(
    view: StateView,
    state_root: bytes,
    snapshot_format: int = SNAPSHOT_FORMAT,
    pace: Callable[[], None] = _no_pause,
) -> Iterator[tuple[bytes, bytes]]:
    """The entries of a snapshot of `view`, whose state root is `state_root`, in key order.
    `pace` is called between the parts of the work that run long without a read of `view`
    (node/thread_pacing.py)."""
    schedule = view.get(schema.META_VALIDATOR_SCHEDULE)
    if schedule is not None:
        yield schema.META_VALIDATOR_SCHEDULE, schedule
    for namespace in (schema.PREFIX, schema.RECORD):
        yield from view.iterator(prefix=namespace)
    # stale versions of tree nodes share the namespace: only those under the root go
    nodes = _in_key_order(list(reachable_nodes(TreeNodeStore(view), state_root)), pace)
    with_leaves = snapshot_format == SNAPSHOT_FORMAT_WITH_LEAVES
    for node_hash, encoded in nodes:
        if with_leaves or encoded[:1] != SMT_LEAF or node_hash == state_root:
            yield schema.tree_node_key(node_hash), encoded
    yield from view.iterator(prefix=schema.VALIDATOR_SET)


def _in_key_order(
    nodes: list[tuple[bytes, bytes]], pace: Callable[[], None]
) -> Iterator[tuple[bytes, bytes]]:
    """`nodes` sorted by hash: sorted in parts, `pace` between them, then merged (one sort
    is one C call that holds the GIL throughout)."""
    part = SNAPSHOT_SORT_PART_NODES
    parts = []
    for start in range(0, len(nodes), part):
        parts.append(sorted(nodes[start : start + part]))
        pace()
    return heapq.merge(*parts)


def cut_chunks(
    entries: Iterable[tuple[bytes, bytes]], chunk_bytes: int = SNAPSHOT_CHUNK_BYTES
) -> Iterator[tuple[bytes, int]]:
    """(chunk, entries in it), each chunk closed at the first entry past `chunk_bytes`."""
    chunk = peer_pb2.SnapshotEntries()
    size = 0
    for key, value in entries:
        chunk.keys.append(key)
        chunk.values.append(value)
        size += len(key) + len(value)
        if size >= chunk_bytes:
            yield chunk.SerializeToString(deterministic=True), len(chunk.keys)
            chunk = peer_pb2.SnapshotEntries()
            size = 0
    if chunk.keys:
        yield chunk.SerializeToString(deterministic=True), len(chunk.keys)


def decode_chunk(chunk: bytes) -> tuple[list[bytes], list[bytes]]:
    """The keys and values of a chunk; SparkError(INVALID_ARGUMENT) if malformed."""
    try:
        entries = peer_pb2.SnapshotEntries.FromString(chunk)
    except DecodeError as exc:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"snapshot chunk: {exc}") from None
    keys, values = list(entries.keys), list(entries.values)
    if len(keys) != len(values):
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"snapshot chunk: {len(keys)} keys but {len(values)} values",
        )
    return keys, values


def chunk_hash(chunk: bytes, hash_fn: HashFunction) -> bytes:
    """The name of `chunk` in a manifest; `hash_fn` is the chain's hash (its genesis')."""
    return hash_fn(SNAPSHOT_CHUNK_TAG + chunk)


def _folder_name(height: int) -> str:
    return f"{height:012d}"


class SnapshotStore:
    """The snapshots of one node on disk: the newest `keep`, plus the one it began from;
    `hash_fn`, the chain's hash, names the chunks it writes."""

    def __init__(self, directory: Path, keep: int, hash_fn: HashFunction) -> None:
        self.directory = directory
        self.keep = keep
        self.hash_fn = hash_fn
        self._lock = threading.Lock()  # the taker's thread writes, the event loop reads
        self._manifests: dict[int, peer_pb2.SnapshotManifest] | None = None

    def manifests(self) -> list[peer_pb2.SnapshotManifest]:
        """Every whole snapshot held, newest first."""
        with self._lock:
            return sorted(self._loaded().values(), key=lambda m: m.height, reverse=True)

    def manifest(self, height: int) -> peer_pb2.SnapshotManifest | None:
        with self._lock:
            return self._loaded().get(height)

    def listed(self) -> peer_pb2.ListSnapshotsResponse:
        """The serving side of Peer.ListSnapshots: the newest ones."""
        return peer_pb2.ListSnapshotsResponse(snapshots=self.manifests()[:MAX_SNAPSHOTS_LISTED])

    def base_height(self) -> int:
        """The height of the snapshot this node began from (0: none)."""
        try:
            return int((self.directory / BASE_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0

    def chunk(self, height: int, index: int) -> bytes:
        manifest = self.manifest(height)
        if manifest is None:
            raise SparkError(ErrorCode.NOT_FOUND, f"no snapshot at height {height} here")
        if not 0 <= index < len(manifest.chunk_hashes):
            raise SparkError(
                ErrorCode.NOT_FOUND,
                f"snapshot {height} has chunks 0 to {len(manifest.chunk_hashes) - 1}, not {index}",
            )
        path = self.directory / _folder_name(height) / f"chunk-{index:06d}"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SparkError(ErrorCode.NOT_FOUND, f"{path} is gone (pruned?)") from None

    def write(
        self,
        height: int,
        block_hash: bytes,
        state_root: bytes,
        chunks: Iterable[tuple[bytes, int]],
        *,
        base: bool = False,
        snapshot_format: int = SNAPSHOT_FORMAT,
    ) -> peer_pb2.SnapshotManifest:
        """Write the snapshot of `height` from its (chunk, entries) and return its manifest;
        `base`: the snapshot this node began from (kept whatever `keep` says);
        `snapshot_format`: the one the chunks are in."""
        final = self.directory / _folder_name(height)
        temporary = final.with_name(final.name + ".tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        manifest = peer_pb2.SnapshotManifest(
            format=snapshot_format, height=height, block_hash=block_hash, state_root=state_root
        )
        for index, (chunk, count) in enumerate(chunks):
            (temporary / f"chunk-{index:06d}").write_bytes(chunk)
            manifest.chunk_hashes.append(chunk_hash(chunk, self.hash_fn))
            manifest.entries += count
            manifest.total_bytes += len(chunk)
        (temporary / MANIFEST_FILE).write_bytes(manifest.SerializeToString(deterministic=True))
        with self._lock:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(temporary, final)
            if base:
                (self.directory / BASE_FILE).write_text(f"{height}\n")
            self._loaded()[height] = manifest
            self._prune()
        return manifest

    def _loaded(self) -> dict[int, peer_pb2.SnapshotManifest]:
        if self._manifests is None:
            self._manifests = {}
            if self.directory.is_dir():
                for folder in self.directory.iterdir():
                    if folder.name.endswith(".tmp"):
                        shutil.rmtree(folder, ignore_errors=True)
                        continue
                    manifest = _read_manifest(folder / MANIFEST_FILE)
                    if manifest is not None and folder.name == _folder_name(manifest.height):
                        self._manifests[manifest.height] = manifest
        return self._manifests

    def _prune(self) -> None:
        base = self.base_height()
        newest = sorted(self._loaded(), reverse=True)
        for height in newest[self.keep :]:
            if height == base:
                continue
            del self._loaded()[height]
            shutil.rmtree(self.directory / _folder_name(height), ignore_errors=True)


def _read_manifest(path: Path) -> peer_pb2.SnapshotManifest | None:
    try:
        return peer_pb2.SnapshotManifest.FromString(path.read_bytes())
    except (OSError, ValueError):
        return None  # not a whole snapshot: never offered


class SnapshotTaker:
    """Takes a snapshot at every `interval`-th height, off the consensus path."""

    def __init__(self, db: plyvel.DB, store: SnapshotStore, interval: int) -> None:
        self._db = db
        self.store = store
        self.interval = interval
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="snapshot")
        self._busy = False
        self.taken: asyncio.Future[peer_pb2.SnapshotManifest] | None = None

    def block_committed(self, height: int, block_hash: bytes, state_root: bytes) -> None:
        """Called right after the commit of `height` (before the next one can be written)."""
        if not self.interval or height % self.interval:
            return
        if self._busy:
            log.warning("snapshot_skipped", extra={"height": height, "why": "previous running"})
            return
        self._busy = True
        view = self._db.snapshot()
        loop = asyncio.get_running_loop()
        self.taken = loop.run_in_executor(
            self._executor, self._take, view, height, block_hash, state_root
        )
        self.taken.add_done_callback(self._done)

    def _take(
        self, view: plyvel.Snapshot, height: int, block_hash: bytes, state_root: bytes
    ) -> peer_pb2.SnapshotManifest:
        try:
            # paced: this thread must not hold the GIL while consensus waits for it
            pacer = ThreadPacer()
            entries = snapshot_entries(PacedView(view, pacer), state_root, pace=pacer.pace)
            return self.store.write(height, block_hash, state_root, cut_chunks(entries))
        finally:
            view.close()

    def _done(self, future: asyncio.Future[peer_pb2.SnapshotManifest]) -> None:
        self._busy = False
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("snapshot_failed", extra={"error": str(error)})
            return
        manifest = future.result()
        log.info(
            "snapshot_taken",
            extra={
                "height": manifest.height,
                "chunks": len(manifest.chunk_hashes),
                "entries": manifest.entries,
                "bytes": manifest.total_bytes,
            },
        )

    def close(self) -> None:
        """Wait for a snapshot being written (the ledger closes after this)."""
        self._executor.shutdown(wait=True)
