"""Write a checked state snapshot into a new ledger (node/snapshot_restore.py checks it).

A snapshot is written only into a ledger still at the genesis (height 0): the entries, the
tree's leaves built from the records (format 2), the indexes derived from them, the kept
blocks with their certificates, and finally, in one synced batch, the head at H and the
base H (schema META_BASE). A marker (META_RESTORING) is set first and cleared by that last
batch, so an interrupted write is never taken for a chain (node/ledger.py refuses to open
it).

`restore_snapshot` (a state sync's, and `spark ledger verify`'s replay from a base snapshot)
writes the entries while their state is being checked against the certified header:
LevelDB takes ~675k puts at 200,000 identifiers, most of a second on its own thread, which
would otherwise wait for the check and then leave the other core idle. Nothing is written
before the snapshot's block is certified by the validators walked from the genesis; a
state that then fails its check is deleted again and the genesis state put back, leaving
the ledger as it was (a crash in between leaves the marker: the node refuses the ledger and
says how to recover).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from typing import NamedTuple

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger.records import decode_prefix
from sparkchain.node import schema
from sparkchain.node.ledger import Ledger
from sparkchain.node.snapshot_restore import (
    SnapshotEntries,
    VerifiedSnapshot,
    certify_snapshot,
    check_snapshot_state,
)
from sparkchain.proto import peer_pb2

WRITE_BATCH_ENTRIES = 50_000  # puts per LevelDB batch while writing a snapshot
WRITES_IN_FLIGHT = 2  # batches built and waiting for the writing thread
# what a ledger at the genesis holds besides its metadata; cleared before a snapshot is
# written, and after one that failed its check
_STATE_NAMESPACES = (
    schema.RECORD,
    schema.PREFIX,
    schema.PREFIX_CHILD,
    schema.OWNER,
    schema.TREE_NODE,
    schema.VALIDATOR_SET,
    schema.HISTORY,
    schema.CHANGES,
    schema.TX,
    schema.BLOCK,
    schema.CERTIFICATE,
    schema.BLOCK_HASH,
)


class RestoreTimes(NamedTuple):
    check_s: float  # from the chunks to the state checked (writing the entries meanwhile)
    write_s: float  # from then to the head written


def restore_snapshot(
    ledger: Ledger,
    manifest: peer_pb2.SnapshotManifest,
    chunks: Sequence[bytes],
    base: peer_pb2.CommittedBlock,
    changes: Sequence[peer_pb2.CommittedBlock],
) -> tuple[VerifiedSnapshot, RestoreTimes]:
    """Check the snapshot against `ledger`'s genesis (snapshot_restore.verify_snapshot)
    and write it into `ledger`, which must be at the genesis; the entries are written while
    their state is checked. Raises SparkError(INVALID_PROOF) naming the first link that
    fails, with the ledger left at the genesis."""
    started = time.perf_counter()
    certified = certify_snapshot(ledger.genesis, manifest, chunks, base, changes)
    write = _SnapshotWrite(ledger, certified.header.height)
    try:
        write.entries(certified.entries)
        verified = check_snapshot_state(certified)
        checked = time.perf_counter()
        write.finish(verified)
    except BaseException:
        write.undo()
        raise
    return verified, RestoreTimes(checked - started, time.perf_counter() - checked)


class _SnapshotWrite:
    """A snapshot at `height` being written into `ledger`: the marker set and the state
    namespaces cleared when it begins; `entries`, then `finish` once the state checked out,
    or `undo`."""

    def __init__(self, ledger: Ledger, height: int) -> None:
        if ledger.height != 0:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT,
                "a snapshot is written only into a new ledger; this one is at block "
                f"{ledger.height}",
            )
        self._ledger, self._db, self._height = ledger, ledger.db, height
        self._done = False
        # what the genesis wrote in the namespaces the snapshot replaces: put back by undo()
        self._genesis_state = [
            item for namespace in _STATE_NAMESPACES for item in self._db.iterator(prefix=namespace)
        ]
        schedule = self._db.get(schema.META_VALIDATOR_SCHEDULE)
        if schedule is not None:
            self._genesis_state.append((schema.META_VALIDATOR_SCHEDULE, schedule))
        self._db.put(schema.META_RESTORING, schema.height_bytes(height), sync=True)
        self._clear()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="snapshot-write")
        self._writer = _BatchWriter(self._db, self._pool)

    def entries(self, entries: SnapshotEntries) -> None:
        """Hand all the entries to the writing thread at once: this thread checks them
        meanwhile (their batches hold a copy of them until written)."""
        self._writer.put(entries.keys, entries.values, in_flight=None)

    def finish(self, verified: VerifiedSnapshot) -> None:
        """Write what is derived from the checked state, then the head, in one synced batch
        that clears the marker."""
        leaf_keys, leaf_values = verified.leaves
        self._writer.put(leaf_keys, leaf_values)
        for keys in _derived_indexes(verified):
            self._writer.put(keys, repeat(b""))
        self._writer.put(*_kept_blocks(verified))
        tree_cache = self._ledger.tree_cache_of(verified.upper_nodes)
        self._writer.wait()  # and raises what a write raised
        self._pool.shutdown()
        with self._db.write_batch(sync=True) as last:
            last.put(
                schema.META_HEAD,
                schema.head_bytes(
                    self._height, verified.manifest.block_hash, verified.header.state_root
                ),
            )
            last.put(schema.META_BASE, schema.height_bytes(self._height))
            last.delete(schema.META_RESTORING)
        self._done = True  # a chain from here on: nothing to undo
        self._ledger.reload(tree_cache)

    def undo(self) -> None:
        """Delete whatever was written, put back what the genesis had written, then delete
        the marker: the ledger holds what it held before. A write that fails here leaves
        the marker, as a crash would."""
        if self._done:
            return
        self._writer.abandon()
        self._pool.shutdown()
        self._clear()
        with self._db.write_batch() as batch:
            for key, value in self._genesis_state:
                batch.put(key, value)
        # synced, so the batches before it are on disk too (one log, written in order)
        self._db.delete(schema.META_RESTORING, sync=True)

    def _clear(self) -> None:
        with self._db.write_batch() as batch:
            for namespace in _STATE_NAMESPACES:
                for key in self._db.iterator(prefix=namespace, include_value=False):
                    batch.delete(key)
            batch.delete(schema.META_VALIDATOR_SCHEDULE)


class _BatchWriter:
    """LevelDB batches built on this thread and written on another, so that LevelDB writes
    while this thread goes on (it lets go of the GIL while it writes). Only the write is
    handed over: plyvel also lets go of the GIL at every put, so a thread that builds a
    batch while another runs Python waits for the GIL at each put (measured: 400k puts,
    0.37 s alone, 151 s beside a thread looping in Python)."""

    def __init__(self, db: plyvel.DB, pool: ThreadPoolExecutor) -> None:
        self._db = db
        self._pool = pool
        self._in_flight: deque[Future[None]] = deque()

    def put(
        self,
        keys: list[bytes],
        values: Iterable[bytes],
        *,
        in_flight: int | None = WRITES_IN_FLIGHT,
    ) -> None:
        """Put each of `keys` with the value beside it (in C: no bytecode loop per put),
        waiting while `in_flight` batches are waiting to be written (None: never)."""
        values = iter(values)
        for start in range(0, len(keys), WRITE_BATCH_ENTRIES):
            batch = self._db.write_batch()
            deque(map(batch.put, keys[start : start + WRITE_BATCH_ENTRIES], values), maxlen=0)
            while in_flight is not None and len(self._in_flight) >= in_flight:
                self._in_flight.popleft().result()
            self._in_flight.append(self._pool.submit(batch.write))

    def wait(self) -> None:
        while self._in_flight:
            self._in_flight.popleft().result()

    def abandon(self) -> None:
        """Drop the batches not yet written and wait for the one being written, whatever
        became of it."""
        for pending in self._in_flight:
            pending.cancel()
        while self._in_flight:
            pending = self._in_flight.popleft()
            if not pending.cancelled():
                pending.exception()


def _derived_indexes(verified: VerifiedSnapshot) -> Iterator[list[bytes]]:
    """The keys (their values are empty) of the owner index of every record and prefix,
    and of the children index of prefixes, WRITE_BATCH_ENTRIES records at a time."""
    owned = verified.record_owner_keys
    for start in range(0, len(owned), WRITE_BATCH_ENTRIES):
        yield owned[start : start + WRITE_BATCH_ENTRIES]
    keys = []
    for key, value in zip(*verified.entries.namespace(schema.PREFIX), strict=True):
        prefix_key = key[1:].decode("utf-8")
        keys.append(schema.owner_key(decode_prefix(value).owner, schema.OWNED_PREFIX, prefix_key))
        parent = prefix_key.rsplit(".", 1)[0] if "." in prefix_key else ""
        keys.append(schema.prefix_child_key(parent, prefix_key))
    yield keys


def _kept_blocks(verified: VerifiedSnapshot) -> tuple[list[bytes], list[bytes]]:
    keys, values = [], []
    for committed in (verified.base, *verified.changes):
        height = committed.commit.height
        keys += [
            schema.block_key(height),
            schema.block_hash_key(committed.commit.block_hash),
            schema.certificate_key(height),
        ]
        values += [
            committed.block.SerializeToString(deterministic=True),
            schema.height_bytes(height),
            committed.commit.SerializeToString(deterministic=True),
        ]
    return keys, values
