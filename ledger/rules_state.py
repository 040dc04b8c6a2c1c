"""The state the rules read and write (`StateView`), an in-memory one, and a per-tx buffer.

The ledger implements `StateView` over its in-memory overlay of LevelDB; tests and the
model test use `MemoryState`. Keys are lookup keys (ASCII upper-cased): `88.608/ABC-1` for
a record, `88.608` for a prefix.

Ownership of messages: the rules never mutate a message returned by `get_*` (they copy
it), and never touch a message again after passing it to `put_*`; the same objects appear in
the `Receipt`, so nobody may mutate them afterwards either.
"""

from __future__ import annotations

from typing import Protocol

from sparkchain.proto import types_pb2 as pb


class StateView(Protocol):
    """What `apply_tx` needs from the ledger state (latest state plus this block so far)."""

    def get_record(self, key: str) -> pb.Record | None:
        """The record whose identifier key is `key` (revoked ones too), or None."""
        ...

    def put_record(self, key: str, record: pb.Record) -> None:
        """Create or replace the record at `key` (== record.key)."""
        ...

    def get_prefix(self, key: str) -> pb.PrefixRecord | None:
        """The prefix whose key is `key`, or None."""
        ...

    def put_prefix(self, key: str, prefix: pb.PrefixRecord) -> None:
        """Create or replace the prefix at `key` (== prefix.key)."""
        ...

    def has_tx(self, tx_id: bytes) -> bool:
        """True when a tx with this id is in a committed block or earlier in this block."""
        ...

    def add_tx(self, tx_id: bytes) -> None:
        """Note that this tx was applied in the block being executed (so `has_tx` sees it)."""
        ...

    def get_validator_schedule(self) -> pb.ValidatorSchedule | None:
        """The validator schedule (ledger/validators.py), or None while the set never
        changed (the genesis set then signs every height)."""
        ...

    def put_validator_schedule(self, schedule: pb.ValidatorSchedule) -> None:
        """Replace the validator schedule."""
        ...


class MemoryState:
    """A `StateView` in plain dicts, for tests, tools and the model test."""

    def __init__(self) -> None:
        self.records: dict[str, pb.Record] = {}
        self.prefixes: dict[str, pb.PrefixRecord] = {}
        self.tx_ids: set[bytes] = set()
        self.validator_schedule: pb.ValidatorSchedule | None = None

    def get_record(self, key: str) -> pb.Record | None:
        return self.records.get(key)

    def put_record(self, key: str, record: pb.Record) -> None:
        self.records[key] = record

    def get_prefix(self, key: str) -> pb.PrefixRecord | None:
        return self.prefixes.get(key)

    def put_prefix(self, key: str, prefix: pb.PrefixRecord) -> None:
        self.prefixes[key] = prefix

    def has_tx(self, tx_id: bytes) -> bool:
        return tx_id in self.tx_ids

    def add_tx(self, tx_id: bytes) -> None:
        self.tx_ids.add(tx_id)

    def get_validator_schedule(self) -> pb.ValidatorSchedule | None:
        return self.validator_schedule

    def put_validator_schedule(self, schedule: pb.ValidatorSchedule) -> None:
        self.validator_schedule = schedule


class TxScratch:
    """Reads through to a state, buffers one tx's writes; `flush` writes them all at once.

    This is what makes a tx all-or-nothing: an operation that raises half-way has written
    nothing, because only a tx that passed every rule is flushed.
    """

    def __init__(self, state: StateView) -> None:
        self._state = state
        self.records: dict[str, pb.Record] = {}
        self.prefixes: dict[str, pb.PrefixRecord] = {}

    def get_record(self, key: str) -> pb.Record | None:
        if key in self.records:
            return self.records[key]
        return self._state.get_record(key)

    def put_record(self, key: str, record: pb.Record) -> None:
        self.records[key] = record

    def get_prefix(self, key: str) -> pb.PrefixRecord | None:
        if key in self.prefixes:
            return self.prefixes[key]
        return self._state.get_prefix(key)

    def put_prefix(self, key: str, prefix: pb.PrefixRecord) -> None:
        self.prefixes[key] = prefix

    def flush(self) -> None:
        state = self._state
        if self.prefixes:
            for key, prefix in self.prefixes.items():
                state.put_prefix(key, prefix)
        put_record = state.put_record
        for key, record in self.records.items():
            put_record(key, record)
