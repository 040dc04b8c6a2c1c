"""A record as Handle.Net's JSON shows it (DESIGN §3): the one rendering of values that the
HTTP gateway serves and that a proof bundle's record view must equal, byte for byte of its
canonical JSON (docs/proof-bundle.md).

    value:  {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://…"},
             "ttl": 86400, "timestamp": "2025-11-24T16:00:01Z"}
    record: {"handle": display form, "owner": BID, "status": "ACTIVE" | "REVOKED",
             ["revokeReason": text,] "values": [value, …]}

A value's data is "string" when its bytes are UTF-8, else "base64" (RFC 4648 §4, padded);
`ttl` is the stored one or the default; `timestamp` is the block time it was written, in
UTC, to the second. Pure: no clock, no datetime (the ledger imports neither).
"""

from __future__ import annotations

import base64
from typing import Any

from sparkchain.identifiers.limits import DEFAULT_VALUE_TTL_S
from sparkchain.proto import types_pb2 as pb

_MS_PER_DAY = 86_400_000
_STATUS_NAMES = {pb.ACTIVE: "ACTIVE", pb.REVOKED: "REVOKED"}


def handle_value_json(value: pb.Value) -> dict[str, Any]:
    """One value as Handle.Net writes it: UTF-8 text as "string", other bytes "base64"."""
    try:
        data: dict[str, str] = {"format": "string", "value": value.data.decode("utf-8")}
    except UnicodeDecodeError:
        data = {"format": "base64", "value": base64.b64encode(value.data).decode("ascii")}
    return {
        "index": value.index,
        "type": value.type,
        "data": data,
        "ttl": value.ttl if value.HasField("ttl") else DEFAULT_VALUE_TTL_S,
        "timestamp": utc_timestamp_text(value.timestamp_ms),
    }


def record_view(record: pb.Record) -> dict[str, Any]:
    """What a person reads of a record: its handle, owner, status and every value."""
    view: dict[str, Any] = {
        "handle": record.identifier,
        "owner": record.owner,
        "status": _STATUS_NAMES.get(record.status, str(record.status)),
    }
    if record.revoke_reason:
        view["revokeReason"] = record.revoke_reason
    view["values"] = [handle_value_json(value) for value in record.values]
    return view


def utc_timestamp_text(time_ms: int) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` of a time in ms since 1970 (UTC, proleptic Gregorian)."""
    days, ms_of_day = divmod(time_ms, _MS_PER_DAY)
    year, month, day = _civil_date(days)
    seconds = ms_of_day // 1000
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def _civil_date(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01, counting in 400-year eras of
    146,097 days from 0000-03-01, so the leap day falls at the end of each year counted."""
    shifted = days + 719_468  # days from 0000-03-01 to 1970-01-01
    era, day_of_era = divmod(shifted, 146_097)
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = month_from_march + 3 if month_from_march < 10 else month_from_march - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day
