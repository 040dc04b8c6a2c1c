"""`GET /api/handles/{id}?proof=true` (issue 11 item 4): the Handle REST answer with the
proof bundle of the record beside it, under "proof" (docs/proof-bundle.md).

Present: HTTP 200, the usual answer (filtered by `type`/`index` as asked) and the bundle of
the whole record, as a bundle proves bytes, not a selection of them. Absent: HTTP 404 with
responseCode 100 and a bundle proving the absence. The proof is of the latest committed
block, as gRPC Resolve's is (node/ledger_reads.py `resolve_with_proof`): a few LevelDB gets,
on the event loop like every resolve. Before block 1 there is nothing to prove against:
HTTP 503, responseCode 2.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_BUNDLE_VALIDATOR_CHANGES, MAX_VALIDATORS
from sparkchain.ledger.bundle import BUNDLE_FORMAT, BUNDLE_VERSION, build_bundle
from sparkchain.ledger.records import filter_values
from sparkchain.node.gateway import HS_ERROR, HS_HANDLE_NOT_FOUND, handle_record_json
from sparkchain.node.ledger import Ledger

PROOF_QUERY = "proof"
_YES = ("true", "1")
_NO = ("false", "0", "")


def proof_requested(text: str | None) -> bool:
    """Whether `?proof=` asks for a bundle; anything but true/false/1/0 is a bad query."""
    if text is None or text.lower() in _NO:
        return False
    if text.lower() in _YES:
        return True
    raise SparkError(ErrorCode.INVALID_ARGUMENT, f"proof must be true or false, got {text!r}")


def proof_answer(
    ledger: Ledger, requested: str, types: Collection[str], indexes: Collection[int]
) -> tuple[dict[str, Any], int]:
    """(the JSON answer, its HTTP status) for GET /api/handles/{requested}?proof=true."""
    try:
        record, proof = ledger.resolve_with_proof(requested)
    except SparkError as error:
        if error.code != ErrorCode.UNAVAILABLE:
            raise
        return {"responseCode": HS_ERROR, "handle": requested, "message": error.message}, 503
    bundle = build_bundle(ledger.genesis, requested, proof)
    if record is None:
        answer = {
            "responseCode": HS_HANDLE_NOT_FOUND,
            "handle": requested,
            "message": f"identifier {requested} is not registered (absence proven in proof)",
            "proof": bundle,
        }
        return answer, 404
    answer = handle_record_json(requested, filter_values(record, types, indexes))
    answer["proof"] = bundle
    return answer, 200


# ------------------------------------------------------------- OpenAPI (gateway_openapi.py)


def _hex(length: int | None = None) -> dict[str, Any]:
    pattern = f"^[0-9a-f]{{{length}}}$" if length is not None else "^([0-9a-f]{2})*$"
    return {"type": "string", "pattern": pattern}


_BASE64: dict[str, Any] = {
    "type": "string",
    "contentEncoding": "base64",
    "pattern": "^[A-Za-z0-9+/]*={0,2}$",
}
_SAFE_INTEGER: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}

# one Handle value as the gateway and a bundle's record view write it
VALUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "type", "data", "ttl", "timestamp"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "type": {"type": "string"},
        "data": {
            "type": "object",
            "required": ["format", "value"],
            "properties": {
                "format": {"enum": ["string", "base64"]},
                "value": {"type": "string"},
            },
        },
        "ttl": {"type": "integer"},
        "timestamp": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"},
    },
}


def _part(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["bytes", "view"],
        "additionalProperties": False,
        "properties": {"bytes": _BASE64, "view": view},
    }


def bundle_schema() -> dict[str, Any]:
    """The JSON Schema of a version 1 proof bundle (docs/proof-bundle.md)."""
    record_view = {
        "type": "object",
        "required": ["handle", "owner", "status", "values"],
        "properties": {
            "handle": {"type": "string"},
            "owner": {"type": "string"},
            "status": {"type": "string"},
            "revokeReason": {"type": "string"},
            "values": {"type": "array", "items": VALUE_SCHEMA},
        },
    }
    header_view = {
        "type": "object",
        "required": [
            "chain_id", "height", "time_ms", "prev_hash", "last_commit_hash", "tx_root",
            "state_root", "validators_hash", "proposer",
        ],
        "properties": {
            "chain_id": {"type": "string"},
            "height": _SAFE_INTEGER,
            "time_ms": _SAFE_INTEGER,
            "prev_hash": _hex(),
            "last_commit_hash": _hex(),
            "tx_root": _hex(),
            "state_root": _hex(),
            "validators_hash": _hex(),
            "proposer": _hex(),
        },
    }  # fmt: skip
    certificate_view = {
        "type": "object",
        "required": ["height", "round", "block_hash", "signatures"],
        "properties": {
            "height": _SAFE_INTEGER,
            "round": {"type": "integer", "minimum": 0},
            "block_hash": _hex(),
            "signatures": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["validator", "signature"],
                    "properties": {"validator": _hex(), "signature": _hex()},
                },
            },
        },
    }
    return {
        "type": "object",
        "description": "a proof bundle (docs/proof-bundle.md): check it with `spark verify` "
        "and the chain's genesis file",
        "required": [
            "format", "version", "chain_id", "genesis_hash", "identifier", "record",
            "state_proof", "header", "certificate", "validator_changes",
        ],
        "additionalProperties": False,
        "properties": {
            "format": {"const": BUNDLE_FORMAT},
            "version": {"const": BUNDLE_VERSION},
            "chain_id": {"type": "string"},
            "genesis_hash": _hex(64),
            "identifier": {"type": "string"},
            "record": {"oneOf": [{"type": "null"}, _part(record_view)]},
            "state_proof": _BASE64,
            "header": _part(header_view),
            "certificate": _part(certificate_view),
            "validator_changes": {
                "type": "array",
                "maxItems": MAX_BUNDLE_VALIDATOR_CHANGES,
                "items": {
                    "type": "object",
                    "description": "a validator-set change, oldest first: the certified "
                    "header whose validators_hash commits to the new set, certified by the "
                    "set before it; the new set signs from the next height",
                    "required": ["header", "certificate", "validators"],
                    "additionalProperties": False,
                    "properties": {
                        "header": _part(header_view),
                        "certificate": _part(certificate_view),
                        "validators": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_VALIDATORS,
                            "items": _hex(64),
                        },
                    },
                },
            },
        },
    }  # fmt: skip
