"""How the CLI shows ledger objects: one dict form (for --json) and one text form each."""

from __future__ import annotations

import datetime
from typing import Any

from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb


def time_text(time_ms: int) -> str:
    if not time_ms:
        return "-"
    moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _data_view(data: bytes) -> tuple[str, str]:
    """("data", text) when the bytes are printable UTF-8, else ("data_hex", hex)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "data_hex", data.hex()
    if all(ch.isprintable() or ch in "\n\t" for ch in text):
        return "data", text
    return "data_hex", data.hex()


def value_to_dict(value: pb.Value) -> dict[str, Any]:
    field, shown = _data_view(value.data)
    out: dict[str, Any] = {"index": value.index, "type": value.type, field: shown}
    if value.HasField("ttl"):
        out["ttl"] = value.ttl
    if value.timestamp_ms:
        out["timestamp_ms"] = value.timestamp_ms
    return out


def record_to_dict(record: pb.Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "identifier": record.identifier,
        "owner": record.owner,
        "status": pb.RecordStatus.Name(record.status),
        "created_height": record.created_height,
        "created_time_ms": record.created_time_ms,
        "updated_height": record.updated_height,
        "updated_time_ms": record.updated_time_ms,
        "values": [value_to_dict(v) for v in record.values],
    }
    if record.revoke_reason:
        out["revoke_reason"] = record.revoke_reason
    return out


def record_lines(record: pb.Record) -> list[str]:
    lines = [
        f"identifier: {record.identifier}",
        f"owner:      {record.owner}",
        f"status:     {pb.RecordStatus.Name(record.status)}",
    ]
    if record.revoke_reason:
        lines.append(f"reason:     {record.revoke_reason}")
    lines.append(f"created:    height {record.created_height}, {time_text(record.created_time_ms)}")
    lines.append(f"updated:    height {record.updated_height}, {time_text(record.updated_time_ms)}")
    if not record.values:
        lines.append("values:     (none)")
        return lines
    lines.append("values:")
    width = max(len(v.type) for v in record.values)
    for v in record.values:
        field, shown = _data_view(v.data)
        shown = shown if field == "data" else f"hex:{shown}"
        lines.append(f"  {v.index:>5}  {v.type:<{width}}  {shown}")
    return lines


def prefix_to_dict(prefix: pb.PrefixRecord, children: list[str]) -> dict[str, Any]:
    return {
        "prefix": prefix.prefix,
        "owner": prefix.owner,
        "registrars": list(prefix.registrars),
        "created_height": prefix.created_height,
        "updated_height": prefix.updated_height,
        "children": children,
    }


def prefix_lines(prefix: pb.PrefixRecord, children: list[str]) -> list[str]:
    lines = [
        f"prefix:     {prefix.prefix}",
        f"owner:      {prefix.owner}",
        f"created:    height {prefix.created_height}",
        f"updated:    height {prefix.updated_height}",
    ]
    if prefix.registrars:
        lines.append("registrars:")
        lines.extend(f"  {bid}" for bid in prefix.registrars)
    else:
        lines.append("registrars: (none)")
    if children:
        lines.append("children:   " + ", ".join(children))
    return lines


def history_entry_to_dict(entry: api_pb2.HistoryEntry) -> dict[str, Any]:
    return {
        "height": entry.height,
        "time_ms": entry.time_ms,
        "tx_id": entry.tx_id.hex(),
        "operation": entry.operation,
        "signer": entry.signer,
        "record": record_to_dict(entry.record),
    }


def status_to_dict(status: api_pb2.StatusResponse) -> dict[str, Any]:
    return {
        "chain_id": status.chain_id,
        "height": status.height,
        "state_root": status.state_root.hex(),
        "last_block_hash": status.last_block_hash.hex(),
        "last_block_time_ms": status.last_block_time_ms,
        "role": status.role,
        "validator": status.validator.hex(),
        "syncing": status.syncing,
        "mempool_size": status.mempool_size,
        "version": status.version,
        "http": status.http,
        "peers": [
            {
                "name": p.name,
                "address": p.address,
                "validator": p.validator.hex(),
                "connected": p.connected,
                "height": p.height,
            }
            for p in status.peers
        ],
    }


def status_lines(status: api_pb2.StatusResponse) -> list[str]:
    lines = [
        f"chain id:   {status.chain_id}",
        f"height:     {status.height}"
        + (f" (last block {time_text(status.last_block_time_ms)})" if status.height else ""),
        f"state root: {status.state_root.hex()}",
        f"last block: {status.last_block_hash.hex()}",
        f"role:       {status.role}" + (" (syncing)" if status.syncing else ""),
    ]
    if status.validator:
        lines.append(f"validator:  {status.validator.hex()}")
    lines.append(f"mempool:    {status.mempool_size} txs")
    connected = sum(1 for p in status.peers if p.connected)
    lines.append(f"peers:      {connected} of {len(status.peers)} connected")
    for p in status.peers:
        state = "connected" if p.connected else "down"
        name = p.name or p.validator.hex()[:16]
        lines.append(f"  {name:<12} {p.address:<22} {state:<9} height {p.height}")
    if status.http:
        lines.append(f"http:       {status.http}")
    if status.version:
        lines.append(f"version:    {status.version}")
    return lines
