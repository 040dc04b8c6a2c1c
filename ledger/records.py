"""Handle values and records (DESIGN §3): the checks on values, and how they are stored.

A value in a tx is checked here (`check_values`); the ledger stores it stamped with the
block time and with its ttl made explicit (`stamp_value`). Stored records keep their values
sorted by index and are encoded deterministically (`encode_record`), so every node derives
the same bytes, hence the same state root.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    DEFAULT_VALUE_TTL_S,
    MAX_META_JSON_DEPTH,
    MAX_RECORD_BYTES,
    MAX_VALUE_DATA_BYTES,
    MAX_VALUE_TYPE_BYTES,
    MAX_VALUES_PER_RECORD,
)
from sparkchain.proto import types_pb2 as pb

# a value of this type carries a JSON object of industry metadata (DESIGN §3)
META_VALUE_TYPE = "spark.meta"
_WHITESPACE = re.compile(r"\s")


def check_value_type(type_: str, where: str) -> None:
    """A type is 1..MAX_VALUE_TYPE_BYTES of UTF-8, printable, without whitespace."""
    if not type_:
        raise SparkError(ErrorCode.INVALID_VALUE, f"{where}: type is empty")
    size = len(type_.encode("utf-8", errors="surrogatepass"))
    if size > MAX_VALUE_TYPE_BYTES:
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{where}: type is {size} bytes, at most {MAX_VALUE_TYPE_BYTES} allowed",
        )
    if type_.isprintable() and _WHITESPACE.search(type_) is None:
        return
    for pos, ch in enumerate(type_):
        if ch.isspace() or not ch.isprintable():
            raise SparkError(
                ErrorCode.INVALID_VALUE,
                f"{where}: type contains U+{ord(ch):04X} at character {pos}; "
                "types are printable and without whitespace",
            )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def json_depth(text: str) -> int:
    """How deep objects and arrays nest in JSON `text` (brackets inside strings do not
    count). Only a bound: the parser still judges whether the text is JSON."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_meta_data(data: bytes, where: str) -> None:
    """`spark.meta` data must be one JSON object in UTF-8, nested at most
    MAX_META_JSON_DEPTH deep (checked before parsing: a consensus rule must not depend on
    the parser's recursion limit, which depends on the stack the check runs on)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SparkError(
            ErrorCode.INVALID_VALUE, f"{where}: {META_VALUE_TYPE} data is not JSON: {exc}"
        ) from None
    depth = json_depth(text)
    if depth > MAX_META_JSON_DEPTH:
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{where}: {META_VALUE_TYPE} data nests {depth} deep, "
            f"at most {MAX_META_JSON_DEPTH} allowed",
        )
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise SparkError(
            ErrorCode.INVALID_VALUE, f"{where}: {META_VALUE_TYPE} data is not JSON: {exc}"
        ) from None
    if not isinstance(parsed, dict):
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{where}: {META_VALUE_TYPE} data must be a JSON object, got {type(parsed).__name__}",
        )


def check_value(value: pb.Value, where: str) -> None:
    """The rules for one value as sent in a tx (DESIGN §3)."""
    if value.index == 0:
        raise SparkError(ErrorCode.INVALID_VALUE, f"{where}: index must be at least 1")
    check_value_type(value.type, where)
    if len(value.data) > MAX_VALUE_DATA_BYTES:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"{where}: data is {len(value.data)} bytes, at most {MAX_VALUE_DATA_BYTES} allowed",
        )
    if value.timestamp_ms != 0:
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{where}: timestamp_ms must be 0 in a tx (the ledger sets it)",
        )
    if value.type == META_VALUE_TYPE:
        check_meta_data(value.data, where)


def _plainly_valid(
    values: Sequence[pb.Value], special_types: Collection[str] = (META_VALUE_TYPE,)
) -> bool:
    """True when every value is certainly valid: the common case, decided without building
    the messages `check_values` names a broken rule with. False means "check each rule".
    A value of one of `special_types` (which must include META_VALUE_TYPE: its data has
    rules of its own) also gives False."""
    if len(values) > MAX_VALUES_PER_RECORD:
        return False
    seen: set[int] = set()
    for value in values:
        index = value.index
        type_ = value.type
        if (
            index == 0
            or index in seen
            or not type_
            or len(type_) > MAX_VALUE_TYPE_BYTES
            or not type_.isascii()
            or not type_.isprintable()
            or " " in type_  # the only ASCII whitespace that isprintable() lets through
            or type_ in special_types
            or len(value.data) > MAX_VALUE_DATA_BYTES
            or value.timestamp_ms != 0
        ):
            return False
        seen.add(index)
    return True


def plain_values(values: Sequence[pb.Value], special_types: frozenset[str]) -> bool:
    """True when `check_values` certainly passes and no value is of one of
    `special_types` (e.g. the template types: then no template rule applies either).
    `special_types` must hold META_VALUE_TYPE."""
    if META_VALUE_TYPE not in special_types:
        raise ValueError(f"special_types must include {META_VALUE_TYPE}")
    return _plainly_valid(values, special_types)


def check_values(values: Sequence[pb.Value], where: str) -> None:
    """Count, each value, then unique indexes; `where` names the place for messages."""
    if _plainly_valid(values):
        return
    if len(values) > MAX_VALUES_PER_RECORD:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"{where}: {len(values)} values, at most {MAX_VALUES_PER_RECORD} allowed",
        )
    seen: set[int] = set()
    for position, value in enumerate(values):
        check_value(value, f"{where} value {position} (index {value.index})")
        if value.index in seen:
            raise SparkError(ErrorCode.INVALID_VALUE, f"{where}: index {value.index} appears twice")
        seen.add(value.index)


def effective_ttl(value: pb.Value) -> int:
    return value.ttl if value.HasField("ttl") else DEFAULT_VALUE_TTL_S


def stamp_value(value: pb.Value, time_ms: int) -> pb.Value:
    """The value as stored: ttl explicit, timestamp_ms = the block time."""
    return pb.Value(
        index=value.index,
        type=value.type,
        data=value.data,
        ttl=effective_ttl(value),
        timestamp_ms=time_ms,
    )


def sorted_by_index(values: Iterable[pb.Value]) -> list[pb.Value]:
    out = list(values)
    if len(out) > 1:  # most records hold one value (an isinstance check cost more than this)
        out.sort(key=_index)
    return out


def _index(value: pb.Value) -> int:
    index: int = value.index
    return index


def encode_record(record: pb.Record) -> bytes:
    encoded: bytes = record.SerializeToString(deterministic=True)
    return encoded


def encode_prefix(prefix: pb.PrefixRecord) -> bytes:
    encoded: bytes = prefix.SerializeToString(deterministic=True)
    return encoded


def decode_record(data: bytes) -> pb.Record:
    record = pb.Record()
    record.ParseFromString(data)
    return record


def decode_prefix(data: bytes) -> pb.PrefixRecord:
    prefix = pb.PrefixRecord()
    prefix.ParseFromString(data)
    return prefix


def check_record_size(record: pb.Record) -> None:
    size = record.ByteSize()
    if size > MAX_RECORD_BYTES:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"record {record.identifier} would be {size} bytes, at most {MAX_RECORD_BYTES}",
        )


def filter_values(
    record: pb.Record, types: Collection[str] = (), indexes: Collection[int] = ()
) -> pb.Record:
    """The values asked for, as Handle resolution filters them: with no filter, `record`
    itself; otherwise a copy keeping each value whose type is in `types` or whose index is
    in `indexes` (the two filters are OR-ed)."""
    if not types and not indexes:
        return record
    wanted_types = set(types)
    wanted_indexes = set(indexes)
    out = pb.Record()
    out.CopyFrom(record)
    del out.values[:]
    out.values.extend(
        v for v in record.values if v.type in wanted_types or v.index in wanted_indexes
    )
    return out
