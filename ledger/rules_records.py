"""Record operations (DESIGN §4): Register, RegisterBatch, Update, Transfer, Revoke.

Each checks its fields, then that its target exists, then the signer, then the state
(the order is part of the rules: the model test holds us to it).
"""

from __future__ import annotations

from collections.abc import Sequence

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import identifier_under, parse_identifier, parse_prefix
from sparkchain.identifiers.limits import (
    FIRST_METADATA_VALUE_INDEX,
    MAX_BATCH_ITEMS,
    MAX_REVOKE_REASON_BYTES,
    MAX_VALUES_PER_RECORD,
    TEMPLATE_VALUE_INDEX,
)
from sparkchain.ledger.records import (
    META_VALUE_TYPE,
    check_record_size,
    check_values,
    effective_ttl,
    plain_values,
    sorted_by_index,
    stamp_value,
)
from sparkchain.ledger.rules_ops import (
    TxContext,
    checked_bid,
    existing_prefix,
    existing_record,
    require_active,
    require_record_controller,
    require_registrant,
)
from sparkchain.ledger.rules_state import TxScratch
from sparkchain.ledger.templates import (
    TEMPLATE_REF_VALUE_TYPE,
    TEMPLATE_VALUE_TYPE,
    check_record_template,
    check_template_values,
)
from sparkchain.proto import types_pb2 as pb


def _record_base(owner: str, context: TxContext) -> pb.Record:
    """The fields every record a tx registers shares (all but identifier, key, values)."""
    return pb.Record(
        owner=owner,
        status=pb.ACTIVE,
        created_height=context.height,
        created_time_ms=context.time_ms,
        updated_height=context.height,
        updated_time_ms=context.time_ms,
    )


def _new_record(
    display: str, key: str, base: pb.Record, values: Sequence[pb.Value], context: TxContext
) -> pb.Record:
    """A copy of `base` (`_record_base`) registering `display` with `values`."""
    record = pb.Record()
    record.CopyFrom(base)
    record.identifier = display
    record.key = key
    # stamped in place (`stamp_value`'s fields): no Value built only to be copied in, and
    # fields set one by one (upb's add(**fields) costs several times more)
    add = record.values.add
    time_ms = context.time_ms
    for v in values if len(values) < 2 else sorted_by_index(values):
        stored = add()
        stored.index = v.index
        stored.type = v.type
        stored.data = v.data
        stored.ttl = effective_ttl(v)
        stored.timestamp_ms = time_ms
    check_record_size(record)
    return record


def _changed(record: pb.Record, context: TxContext) -> pb.Record:
    changed = pb.Record()
    changed.CopyFrom(record)
    changed.updated_height = context.height
    changed.updated_time_ms = context.time_ms
    return changed


def _require_template_followed(scratch: TxScratch, values: Sequence[pb.Value]) -> None:
    """Records are judged by the template as it is when they are written; records written
    earlier are not judged again when it changes (ledger/templates.py)."""
    check_record_template(values, scratch.get_record)


def _require_new(scratch: TxScratch, key: str, display: str) -> None:
    # by key: `88/abc` exists when `88/ABC` does, revoked or not
    already = scratch.get_record(key)
    if already is not None:
        raise SparkError(ErrorCode.EXISTS, f"identifier {display} exists (as {already.identifier})")


def register(scratch: TxScratch, op: pb.Register, context: TxContext) -> None:
    identifier = parse_identifier(op.identifier)
    owner = checked_bid(op.owner, "register.owner") if op.owner else context.signer
    check_values(op.values, "register")
    check_template_values(op.values, "register")
    prefix = existing_prefix(scratch, identifier.prefix)
    require_registrant(prefix, context)
    _require_new(scratch, identifier.key, identifier.display)
    _require_template_followed(scratch, op.values)
    record = _new_record(
        identifier.display, identifier.key, _record_base(owner, context), op.values, context
    )
    scratch.put_record(identifier.key, record)


# values of these types have rules beyond check_values (the meta JSON, the template rules)
_SPECIAL_VALUE_TYPES = frozenset({META_VALUE_TYPE, TEMPLATE_VALUE_TYPE, TEMPLATE_REF_VALUE_TYPE})


def register_batch(scratch: TxScratch, op: pb.RegisterBatch, context: TxContext) -> None:
    prefix = parse_prefix(op.prefix)
    owner = checked_bid(op.owner, "register_batch.owner") if op.owner else context.signer
    items = list(op.items)
    if not items:
        raise SparkError(ErrorCode.INVALID_TX, "register_batch has no items")
    if len(items) > MAX_BATCH_ITEMS:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"register_batch has {len(items)} items, at most {MAX_BATCH_ITEMS} allowed",
        )
    # (display, key, values, plain): plain values need no template check (none applies)
    parsed: list[tuple[str, str, Sequence[pb.Value], bool]] = []
    for number, item in enumerate(items):
        try:
            display, key = identifier_under(prefix, item.suffix)
            values: Sequence[pb.Value] = item.values
            plain = plain_values(values, _SPECIAL_VALUE_TYPES)
            if not plain:
                where = f"register_batch.items[{number}]"
                check_values(values, where)
                check_template_values(values, where)
        except SparkError as exc:
            where = f"register_batch.items[{number}]"
            message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
            raise SparkError(exc.code, message, item_index=number) from None
        parsed.append((display, key, values, plain))
    prefix_record = existing_prefix(scratch, prefix)
    require_registrant(prefix_record, context)
    base = _record_base(owner, context)
    for number, (display, key, item_values, plain) in enumerate(parsed):
        # an earlier item of this batch is already in the scratch, so a repeat is EXISTS
        try:
            _require_new(scratch, key, display)
            if not plain:
                _require_template_followed(scratch, item_values)
            record = _new_record(display, key, base, item_values, context)
        except SparkError as exc:
            raise SparkError(
                exc.code, f"register_batch.items[{number}]: {exc.message}", item_index=number
            ) from None
        scratch.put_record(key, record)


def update(scratch: TxScratch, op: pb.Update, context: TxContext) -> None:
    identifier = parse_identifier(op.identifier)
    check_values(op.upsert, "update.upsert")
    check_template_values(op.upsert, "update.upsert")
    removed = set(op.remove_indexes)
    if len(removed) != len(op.remove_indexes):
        raise SparkError(ErrorCode.INVALID_TX, "update.remove_indexes repeats an index")
    if not op.upsert and not removed:
        raise SparkError(ErrorCode.INVALID_TX, "update neither upserts nor removes a value")
    both = removed & {v.index for v in op.upsert}
    if both:
        raise SparkError(ErrorCode.INVALID_TX, f"index {min(both)} is both upserted and removed")
    record = existing_record(scratch, identifier)
    require_record_controller(scratch, record, identifier, context, "update it")
    require_active(record, "updated")
    present = {v.index for v in record.values}
    missing = sorted(removed - present)
    if missing:
        raise SparkError(
            ErrorCode.NOT_FOUND, f"{record.identifier} has no value at index {missing[0]}"
        )
    replaced = removed | {v.index for v in op.upsert}
    kept = [v for v in record.values if v.index not in replaced]
    values = sorted_by_index([*kept, *(stamp_value(v, context.time_ms) for v in op.upsert)])
    if len(values) > MAX_VALUES_PER_RECORD:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"{record.identifier} would have {len(values)} values, "
            f"at most {MAX_VALUES_PER_RECORD} allowed",
        )
    touched = replaced & {TEMPLATE_VALUE_INDEX} or any(
        index >= FIRST_METADATA_VALUE_INDEX for index in replaced
    )
    if touched:
        _require_template_followed(scratch, values)
    changed = _changed(record, context)
    del changed.values[:]
    changed.values.extend(values)
    check_record_size(changed)
    scratch.put_record(record.key, changed)


def transfer(scratch: TxScratch, op: pb.Transfer, context: TxContext) -> None:
    identifier = parse_identifier(op.identifier)
    new_owner = checked_bid(op.new_owner, "transfer.new_owner")
    record = existing_record(scratch, identifier)
    require_record_controller(scratch, record, identifier, context, "transfer it")
    require_active(record, "transferred")
    changed = _changed(record, context)
    changed.owner = new_owner
    check_record_size(changed)
    scratch.put_record(record.key, changed)


def revoke(scratch: TxScratch, op: pb.Revoke, context: TxContext) -> None:
    identifier = parse_identifier(op.identifier)
    reason_bytes = len(op.reason.encode("utf-8"))
    if reason_bytes > MAX_REVOKE_REASON_BYTES:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"revoke reason is {reason_bytes} bytes, at most {MAX_REVOKE_REASON_BYTES} allowed",
        )
    record = existing_record(scratch, identifier)
    require_record_controller(scratch, record, identifier, context, "revoke it")
    if record.status == pb.REVOKED:
        raise SparkError(ErrorCode.REVOKED, f"{record.identifier} is already revoked")
    changed = _changed(record, context)
    changed.status = pb.REVOKED
    changed.revoke_reason = op.reason
    check_record_size(changed)
    scratch.put_record(record.key, changed)
