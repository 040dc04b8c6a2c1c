"""A plain Python model of the ledger rules (DESIGN §4), for tests/test_rules_model.py.

Written from the design, not from node/rules*.py: dicts and sets, its own grammar checks
(enough for the small pool of identifiers the test draws from), and it knows which BIDs are
valid because it made them. `Model.apply` raises Rejected(code) or changes the model, checking
in the documented order: envelope, replay, expiry, then per op: fields, target exists,
signer authorised, state allows it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from sparkchain.identifiers.errors import ErrorCode
from sparkchain.identifiers.limits import DEFAULT_VALUE_TTL_S, MAX_TX_EXPIRY_AHEAD_MS
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import bid_of

# the cast; the first is the simplest choice, which hypothesis draws most (acme owns 88)
NAMES = ("acme", "root", "reg", "bob", "mallory")
BIDS = {name: bid_of(name) for name in NAMES}
NAME_OF = {bid: name for name, bid in BIDS.items()}
VALID_BIDS = frozenset(BIDS.values())

_SEGMENT = re.compile(r"[A-Za-z0-9-]+")
HOUR_MS = MAX_TX_EXPIRY_AHEAD_MS


def model_prefix_ok(text: str) -> bool:
    segments = text.split(".")
    return 1 <= len(segments) <= 8 and all(_SEGMENT.fullmatch(s) for s in segments)


def model_suffix_ok(text: str) -> bool:
    return (
        text != ""
        and text == text.strip()
        and len(text.encode()) <= 200
        and all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in text)
    )


def model_identifier_ok(text: str) -> bool:
    if "/" not in text:
        return False
    prefix, suffix = text.split("/", 1)
    return model_prefix_ok(prefix) and model_suffix_ok(suffix) and len(text.encode()) <= 255


def upper(text: str) -> str:
    return "".join(c.upper() if "a" <= c <= "z" else c for c in text)


class Rejected(Exception):
    def __init__(self, code: ErrorCode) -> None:
        self.code = code


@dataclass
class ModelValue:
    type: str
    data: bytes
    ttl: int | None
    timestamp_ms: int = 0


@dataclass
class ModelRecord:
    display: str
    owner: str
    created: tuple[int, int]
    updated: tuple[int, int]
    values: dict[int, ModelValue]
    revoked: bool = False
    reason: str = ""


@dataclass
class ModelPrefix:
    display: str
    owner: str
    created: int
    updated: int
    registrars: set[str] = field(default_factory=set)


class Model:
    """DESIGN §4 in dicts. `apply` raises Rejected(code) or changes the model."""

    def __init__(self, roots: set[str], prefixes: dict[str, str]) -> None:
        self.roots = roots
        self.prefixes = {upper(p): ModelPrefix(p, owner, 0, 0) for p, owner in prefixes.items()}
        self.records: dict[str, ModelRecord] = {}
        self.seen: set[bytes] = set()

    # the op as the generator described it: (name, fields)
    def apply(self, tx: GeneratedTx, height: int, now: int) -> None:
        if tx.bad_signature:
            raise Rejected(ErrorCode.BAD_SIGNATURE)
        if tx.wrong_chain:
            raise Rejected(ErrorCode.WRONG_CHAIN)
        if tx.tx_id in self.seen:
            raise Rejected(ErrorCode.DUPLICATE_TX)
        if tx.expires_at_ms < now or tx.expires_at_ms > now + HOUR_MS:
            raise Rejected(ErrorCode.EXPIRED)
        signer = BIDS[tx.signer]
        getattr(self, "op_" + tx.op)(signer, height, now, **tx.fields)
        self.seen.add(tx.tx_id)

    # -- checks that need no state
    @staticmethod
    def need_prefix(text: str) -> None:
        if not model_prefix_ok(text):
            raise Rejected(ErrorCode.INVALID_PREFIX)

    @staticmethod
    def need_identifier(text: str) -> None:
        if not model_identifier_ok(text):
            raise Rejected(ErrorCode.INVALID_IDENTIFIER)

    @staticmethod
    def need_bid(text: str) -> None:
        if text not in VALID_BIDS:
            raise Rejected(ErrorCode.INVALID_BID)

    @staticmethod
    def need_values(values: list[tuple[int, str, str, int | None, int]]) -> None:
        indexes: set[int] = set()
        for index, type_, data, _ttl, stamp in values:
            if index == 0 or type_ == "" or " " in type_ or stamp != 0:
                raise Rejected(ErrorCode.INVALID_VALUE)
            if type_ == "spark.meta" and not data.startswith("{"):
                raise Rejected(ErrorCode.INVALID_VALUE)
            if index in indexes:
                raise Rejected(ErrorCode.INVALID_VALUE)
            indexes.add(index)

    # -- lookups
    def prefix_of(self, text: str) -> ModelPrefix:
        found = self.prefixes.get(upper(text))
        if found is None:
            raise Rejected(ErrorCode.NOT_FOUND)
        return found

    def record_of(self, identifier: str) -> ModelRecord:
        found = self.records.get(upper(identifier))
        if found is None:
            raise Rejected(ErrorCode.NOT_FOUND)
        return found

    def may_control(self, signer: str, identifier: str, record: ModelRecord) -> None:
        prefix = self.prefixes.get(upper(identifier.split("/", 1)[0]))
        if signer != record.owner and (prefix is None or prefix.owner != signer):
            raise Rejected(ErrorCode.UNAUTHORIZED)

    @staticmethod
    def stored(values: list[tuple[int, str, str, int | None, int]], now: int) -> dict[int, Any]:
        return {i: ModelValue(t, d.encode(), ttl, now) for i, t, d, ttl, _ in values}

    # -- operations
    def op_create_prefix(self, signer: str, height: int, now: int, prefix: str, owner: str) -> None:
        self.need_prefix(prefix)
        self.need_bid(owner)
        segments = prefix.split(".")
        ancestors = [".".join(segments[:n]) for n in range(len(segments) - 1, 0, -1)]
        parent = next(
            (self.prefixes[upper(a)] for a in ancestors if upper(a) in self.prefixes), None
        )
        allowed = parent.owner == signer if parent else signer in self.roots
        if not allowed:
            raise Rejected(ErrorCode.UNAUTHORIZED)
        if upper(prefix) in self.prefixes:
            raise Rejected(ErrorCode.EXISTS)
        self.prefixes[upper(prefix)] = ModelPrefix(prefix, owner, height, height)

    def op_set_registrars(
        self, signer: str, height: int, now: int, prefix: str, add: list[str], remove: list[str]
    ) -> None:
        self.need_prefix(prefix)
        for bid in [*add, *remove]:
            self.need_bid(bid)
        if (not add and not remove) or set(add) & set(remove):
            raise Rejected(ErrorCode.INVALID_TX)
        target = self.prefix_of(prefix)
        if target.owner != signer:
            raise Rejected(ErrorCode.UNAUTHORIZED)
        target.registrars = (target.registrars - set(remove)) | set(add)
        target.updated = height

    def op_transfer_prefix(
        self, signer: str, height: int, now: int, prefix: str, new_owner: str
    ) -> None:
        self.need_prefix(prefix)
        self.need_bid(new_owner)
        target = self.prefix_of(prefix)
        if target.owner != signer:
            raise Rejected(ErrorCode.UNAUTHORIZED)
        target.owner = new_owner
        target.updated = height

    def _may_register(self, signer: str, prefix: str) -> None:
        target = self.prefix_of(prefix)
        if signer != target.owner and signer not in target.registrars:
            raise Rejected(ErrorCode.UNAUTHORIZED)

    def op_register(
        self, signer: str, height: int, now: int, identifier: str, values: list[Any], owner: str
    ) -> None:
        self.need_identifier(identifier)
        if owner:
            self.need_bid(owner)
        self.need_values(values)
        self._may_register(signer, identifier.split("/", 1)[0])
        if upper(identifier) in self.records:
            raise Rejected(ErrorCode.EXISTS)
        self.records[upper(identifier)] = ModelRecord(
            identifier, owner or signer, (height, now), (height, now), self.stored(values, now)
        )

    def op_register_batch(
        self, signer: str, height: int, now: int, prefix: str, items: list[Any], owner: str
    ) -> None:
        self.need_prefix(prefix)
        if owner:
            self.need_bid(owner)
        if not items:
            raise Rejected(ErrorCode.INVALID_TX)
        for suffix, values in items:
            self.need_identifier(f"{prefix}/{suffix}")
            self.need_values(values)
        self._may_register(signer, prefix)
        added: dict[str, ModelRecord] = {}
        for suffix, values in items:
            name = f"{prefix}/{suffix}"
            if upper(name) in self.records or upper(name) in added:
                raise Rejected(ErrorCode.EXISTS)
            added[upper(name)] = ModelRecord(
                name, owner or signer, (height, now), (height, now), self.stored(values, now)
            )
        self.records.update(added)

    def op_update(
        self,
        signer: str,
        height: int,
        now: int,
        identifier: str,
        upsert: list[Any],
        remove: list[int],
    ) -> None:
        self.need_identifier(identifier)
        self.need_values(upsert)
        upsert_indexes = {v[0] for v in upsert}
        if (
            len(set(remove)) != len(remove)
            or not (upsert or remove)
            or upsert_indexes & set(remove)
        ):
            raise Rejected(ErrorCode.INVALID_TX)
        record = self.record_of(identifier)
        self.may_control(signer, identifier, record)
        if record.revoked:
            raise Rejected(ErrorCode.REVOKED)
        if any(i not in record.values for i in remove):
            raise Rejected(ErrorCode.NOT_FOUND)
        for index in remove:
            del record.values[index]
        record.values.update(self.stored(upsert, now))
        record.updated = (height, now)

    def op_transfer(
        self, signer: str, height: int, now: int, identifier: str, new_owner: str
    ) -> None:
        self.need_identifier(identifier)
        self.need_bid(new_owner)
        record = self.record_of(identifier)
        self.may_control(signer, identifier, record)
        if record.revoked:
            raise Rejected(ErrorCode.REVOKED)
        record.owner = new_owner
        record.updated = (height, now)

    def op_revoke(self, signer: str, height: int, now: int, identifier: str, reason: str) -> None:
        self.need_identifier(identifier)
        record = self.record_of(identifier)
        self.may_control(signer, identifier, record)
        if record.revoked:
            raise Rejected(ErrorCode.REVOKED)
        record.revoked = True
        record.reason = reason
        record.updated = (height, now)

    # -- what resolution shows, in the same plain shape as `_plain_*` below
    def view(self) -> tuple[dict[str, Any], dict[str, Any]]:
        records = {
            key: (
                r.display,
                r.owner,
                "REVOKED" if r.revoked else "ACTIVE",
                r.created,
                r.updated,
                r.reason,
                sorted(
                    (
                        i,
                        v.type,
                        v.data,
                        DEFAULT_VALUE_TTL_S if v.ttl is None else v.ttl,
                        v.timestamp_ms,
                    )
                    for i, v in r.values.items()
                ),
            )
            for key, r in self.records.items()
        }
        prefixes = {
            key: (p.display, p.owner, sorted(p.registrars), p.created, p.updated)
            for key, p in self.prefixes.items()
        }
        return records, prefixes


def plain_record(r: pb.Record) -> tuple[Any, ...]:
    return (
        r.identifier,
        r.owner,
        pb.RecordStatus.Name(r.status),
        (r.created_height, r.created_time_ms),
        (r.updated_height, r.updated_time_ms),
        r.revoke_reason,
        [(v.index, v.type, v.data, v.ttl, v.timestamp_ms) for v in r.values],
    )


def plain_prefix(p: pb.PrefixRecord) -> tuple[Any, ...]:
    return (p.prefix, p.owner, list(p.registrars), p.created_height, p.updated_height)


@dataclass
class GeneratedTx:
    signed: pb.SignedTx
    signer: str
    op: str
    fields: dict[str, Any]
    expires_at_ms: int
    bad_signature: bool = False
    wrong_chain: bool = False

    @property
    def tx_id(self) -> bytes:
        return hashlib.sha256(self.signed.body).digest()
