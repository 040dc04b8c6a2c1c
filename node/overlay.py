"""Execution of one block on an in-memory overlay over the committed state (DESIGN §5).

Consensus may execute several proposals for one height (one per round) and discard all
but the decided one. Each execution gets its own `Overlay`: reads fall through to LevelDB,
writes stay in dicts, and nothing reaches LevelDB until the decided block's overlay is
turned into `BlockWrites` and written in one batch -- the block is never executed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import ascii_upper
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.ledger import smt, validators
from sparkchain.ledger.records import decode_prefix, decode_record, encode_prefix, encode_record
from sparkchain.ledger.rules import Receipt
from sparkchain.node import schema
from sparkchain.proto import types_pb2 as pb

# committed prefix records kept decoded; there are few prefixes and every tx reads one
PREFIX_CACHE_ENTRIES = 10_000
# a range scan for absent records may step over this many stored keys per key wanted
# before it gives up (a step costs a fraction of a point lookup)
_SCAN_STEPS_PER_KEY = 4


class Overlay:
    """A `StateView` (ledger/rules_state.py): committed state plus this block's writes.

    `prefix_cache` is the ledger's cache of committed prefix records (every Register reads
    its prefix): filled here with what LevelDB holds, updated by the ledger on commit.
    """

    def __init__(
        self, db: plyvel.DB, prefix_cache: dict[str, pb.PrefixRecord | None] | None = None
    ) -> None:
        self._db = db
        self._prefix_cache = prefix_cache if prefix_cache is not None else {}
        self.records: dict[str, pb.Record] = {}
        self.prefixes: dict[str, pb.PrefixRecord] = {}
        self.tx_ids: set[bytes] = set()
        self.validator_schedule: pb.ValidatorSchedule | None = None  # written by this block
        self._absent: set[str] = set()  # record keys LevelDB is known not to hold
        # the committed owner of each record and prefix read from LevelDB ("" when absent):
        # the owner index moves an entry only when a block changes an owner
        self._committed_owners: dict[tuple[bytes, str], str] = {}

    def learn_absent_records(self, keys: Iterable[str]) -> None:
        """Find out which of `keys` LevelDB holds no record for, in one range scan, so that
        `get_record` answers those without a lookup each.

        A block registering serial numbers looks up a thousand new keys that sit side by
        side: one seek over their range (usually empty) replaces a thousand point lookups.
        When the range holds many other records, the scan stops early and nothing is
        learnt: the lookups happen as before.
        """
        wanted = {schema.record_key(key): key for key in keys}
        if len(wanted) < 2:
            return
        limit = _SCAN_STEPS_PER_KEY * len(wanted)
        existing: set[bytes] = set()
        stop = max(wanted) + b"\x00"  # the smallest key after the last one wanted
        with self._db.iterator(start=min(wanted), stop=stop, include_value=False) as scan:
            for step, raw in enumerate(scan):
                if step >= limit:
                    return
                existing.add(raw)
        self._absent.update(key for raw, key in wanted.items() if raw not in existing)

    def get_record(self, key: str) -> pb.Record | None:
        record = self.records.get(key)
        if record is not None:
            return record
        if key in self._absent:
            return None
        raw = self._db.get(schema.record_key(key))
        committed = None if raw is None else decode_record(raw)
        self._committed_owners[schema.OWNED_RECORD, key] = committed.owner if committed else ""
        return committed

    def put_record(self, key: str, record: pb.Record) -> None:
        self.records[key] = record

    def get_prefix(self, key: str) -> pb.PrefixRecord | None:
        prefix = self.prefixes.get(key)
        if prefix is not None:
            return prefix
        cache = self._prefix_cache
        if key in cache:
            committed = cache[key]
        else:
            raw = self._db.get(schema.prefix_key(key))
            committed = None if raw is None else decode_prefix(raw)
            if len(cache) >= PREFIX_CACHE_ENTRIES:
                cache.clear()
            cache[key] = committed
        self._committed_owners[schema.OWNED_PREFIX, key] = committed.owner if committed else ""
        return committed

    def put_prefix(self, key: str, prefix: pb.PrefixRecord) -> None:
        self.prefixes[key] = prefix

    def has_tx(self, tx_id: bytes) -> bool:
        return tx_id in self.tx_ids or self._db.get(schema.tx_key(tx_id)) is not None

    def add_tx(self, tx_id: bytes) -> None:
        self.tx_ids.add(tx_id)

    def get_validator_schedule(self) -> pb.ValidatorSchedule | None:
        if self.validator_schedule is not None:
            return self.validator_schedule
        raw = self._db.get(schema.META_VALIDATOR_SCHEDULE)
        return None if raw is None else validators.decode_schedule(raw, ErrorCode.STORAGE_CORRUPT)

    def put_validator_schedule(self, schedule: pb.ValidatorSchedule) -> None:
        self.validator_schedule = schedule

    def committed_prefix_exists(self, key: str) -> bool:
        return self._db.get(schema.prefix_key(key)) is not None

    def committed_history_tail(self, key: str) -> tuple[bytes, bytes] | None:
        """The latest committed history entry of record `key` (its storage key and value);
        None when LevelDB holds none (the record is new, or older than a snapshot base)."""
        if key in self._absent or self._committed_owners.get((schema.OWNED_RECORD, key)) == "":
            return None
        with self._db.iterator(prefix=schema.history_range(key), reverse=True) as scan:
            found: tuple[bytes, bytes] | None = next(scan, None)
        return found

    def committed_record_bytes(self, key: str) -> bytes | None:
        raw: bytes | None = self._db.get(schema.record_key(key))
        return raw

    def committed_owner(self, kind: bytes, key: str) -> str:
        """The owner of a record (kind OWNED_RECORD) or prefix before this block; "" when
        it did not exist. Rules read what they write, so this is rarely a lookup."""
        known = self._committed_owners.get((kind, key))
        if known is not None:
            return known
        if kind == schema.OWNED_RECORD:
            if key in self._absent:
                return ""
            raw = self._db.get(schema.record_key(key))
            return decode_record(raw).owner if raw is not None else ""
        raw = self._db.get(schema.prefix_key(key))
        return decode_prefix(raw).owner if raw is not None else ""


def record_keys_of(body: pb.TxBody) -> list[str]:
    """The record keys a Register or RegisterBatch will look up, to learn in advance which
    are absent. Only a hint: a key computed from a malformed tx is still a fact about the
    store, and the rules parse and check every identifier themselves."""
    operation = body.WhichOneof("op")
    if operation == "register":
        return [ascii_upper(body.register.identifier)]
    if operation == "register_batch":
        batch = body.register_batch
        head = ascii_upper(batch.prefix) + "/"
        return [head + ascii_upper(item.suffix) for item in batch.items]
    return []


@dataclass(slots=True)
class BlockWrites:
    """Every LevelDB put a block makes, except its certificate and the head pointer (which
    the commit adds), and the state tree changes they imply."""

    puts: list[tuple[bytes, bytes]] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)  # owner index entries a transfer moved
    tree_changes: dict[bytes, bytes | None] = field(default_factory=dict)
    changed_prefixes: dict[str, pb.PrefixRecord] = field(default_factory=dict)
    validator_schedule: pb.ValidatorSchedule | None = None  # when the block changed the set


def state_writes(
    overlay: Overlay,
    height: int,
    receipts: Sequence[tuple[int, Receipt]],
    hash_fn: HashFunction = sha256,
) -> BlockWrites:
    """Records, prefixes, children and owner indexes, history, change list and tree changes.

    `receipts` are (tx index in block, receipt) of every applied tx, in block order. Each
    record version is serialized once: the same bytes go to the record slot, the state tree
    and the history entry, except in a record's latest entry, which holds none (schema 5):
    the entry that was latest before this block is given its record bytes back, which are
    the committed record's.
    """
    writes = BlockWrites()
    puts = writes.puts
    append = puts.append
    encoded: dict[int, bytes] = {}  # id(record) -> bytes; receipts share the overlay's objects
    changes = bytearray()
    history_key_of, change_entry = schema.history_key_of, schema.change_entry
    change_record = schema.CHANGE_RECORD
    # record key -> (index in `puts` of its latest history entry, that entry's head)
    latest_entries: dict[str, tuple[int, bytes]] = {}
    for tx_index, receipt in receipts:
        entry_head = schema.history_entry_head(
            receipt.height, receipt.time_ms, receipt.tx_id, receipt.operation, receipt.signer
        )
        location = schema.tx_location(receipt.height, tx_index)
        for record in receipt.records:
            record_bytes = encode_record(record)
            key_bytes = record.key.encode("utf-8")
            encoded[id(record)] = record_bytes
            latest_entries[record.key] = (len(puts), entry_head)
            append((history_key_of(key_bytes, location), entry_head + record_bytes))
            changes += change_entry(tx_index, change_record, key_bytes)
        for prefix in receipt.prefixes:
            key_bytes = prefix.key.encode("utf-8")
            changes += change_entry(tx_index, schema.CHANGE_PREFIX, key_bytes)
    puts.append((schema.changes_key(height), bytes(changes)))
    _latest_entries_without_record(overlay, puts, latest_entries)
    tree = writes.tree_changes
    record_tree_key_of = smt.record_tree_key_of
    owner_key, committed_owner, deletes = schema.owner_key, overlay.committed_owner, writes.deletes
    record_kind = schema.OWNED_RECORD
    record_prefix = schema.RECORD
    owner_heads: dict[str, bytes] = {}  # owner -> owner_key_head(owner, record_kind)
    for key, record in overlay.records.items():
        record_bytes = encoded.get(id(record)) or encode_record(record)
        key_bytes = key.encode("utf-8")
        append((record_prefix + key_bytes, record_bytes))  # schema.record_key(key)
        tree[record_tree_key_of(key_bytes, hash_fn)] = record_bytes
        before = committed_owner(record_kind, key)
        owner = record.owner
        if before != owner:
            if before:
                deletes.append(owner_key(before, record_kind, key))
            head = owner_heads.get(owner)
            if head is None:
                head = owner_heads[owner] = schema.owner_key_head(owner, record_kind)
            append((head + key_bytes, b""))  # schema.owner_key(owner, record_kind, key)
    for key, prefix in overlay.prefixes.items():
        prefix_bytes = encode_prefix(prefix)
        storage_key = schema.prefix_key(key)
        puts.append((storage_key, prefix_bytes))
        tree[smt.prefix_tree_key(key, hash_fn)] = prefix_bytes
        before = committed_owner(schema.OWNED_PREFIX, key)
        if before != prefix.owner:
            if before:
                deletes.append(owner_key(before, schema.OWNED_PREFIX, key))
            puts.append((owner_key(prefix.owner, schema.OWNED_PREFIX, key), b""))
        if not overlay.committed_prefix_exists(key):
            parent_key = key.rsplit(".", 1)[0] if "." in key else ""
            puts.append((schema.prefix_child_key(parent_key, key), b""))
        writes.changed_prefixes[key] = prefix
    schedule = overlay.validator_schedule
    if schedule is not None:
        schedule_bytes = validators.encode_schedule(schedule)
        puts.append((schema.META_VALIDATOR_SCHEDULE, schedule_bytes))
        latest = schedule.sets[-1]
        puts.append(
            (
                schema.validator_set_key(latest.from_height),
                latest.SerializeToString(deterministic=True),
            )
        )
        tree[smt.validators_tree_key(hash_fn)] = schedule_bytes
        writes.validator_schedule = schedule
    return writes


def _latest_entries_without_record(
    overlay: Overlay, puts: list[tuple[bytes, bytes]], latest: dict[str, tuple[int, bytes]]
) -> None:
    """Drop the record bytes of each changed record's latest history entry (its record is
    the one written to `r`), and give them back to the entry that was latest before."""
    for key, (at, entry_head) in latest.items():
        puts[at] = (puts[at][0], entry_head)
        tail = overlay.committed_history_tail(key)
        if tail is None:
            continue
        tail_key, tail_value = tail
        if schema.decode_history_entry(tail_value).record_bytes:
            continue  # it holds them already
        current = overlay.committed_record_bytes(key)
        if current is None:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT, f"record {key} has history but no current record"
            )
        puts.append((tail_key, tail_value + current))
