"""OpenAPI 3.1 `paths` of the explorer's endpoints (node/gateway_explorer.py), with inline
JSON Schemas for every status each one answers, errors included."""

from __future__ import annotations

from typing import Any, Final

from sparkchain.identifiers.limits import (
    DEFAULT_EXPLORER_PAGE_SIZE,
    MAX_EXPLORER_HISTORY_ENTRIES,
    MAX_EXPLORER_PAGE_SIZE,
)
from sparkchain.node.explorer_vendor import vendor_files
from sparkchain.node.openapi import BUSY_RESPONSE

JSON: Final = "application/json"
# node/gateway_explorer.py's STATIC_FILES (that module imports this one)
STATIC_FILE_NAMES: Final = (
    "app.js",
    "crypto.js",
    "index.html",
    "style.css",
    "verify.js",
    "views.js",
    *vendor_files(),
)
_HEX: Final = {"type": "string", "pattern": "^[0-9a-f]*$"}
_NULLABLE_INT: Final = {"type": ["integer", "null"]}
_NULLABLE_TEXT: Final = {"type": ["string", "null"]}
_TEXT: Final = {"type": "string"}
_INT: Final = {"type": "integer", "minimum": 0}
_ERROR: Final = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": _TEXT},
}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_SIGNERS: Final = _object(
    {
        "height": _INT,
        "round": _INT,
        "block_hash": _HEX,
        "signers": _list(_object({"name": _TEXT, "public_key": _HEX})),
    }
)
_TX_SUMMARY: Final = {"id": _HEX, "op": _TEXT, "signer": _TEXT, "subject": _TEXT}
_BLOCK_SUMMARY: Final = _object(
    {
        "height": _INT,
        "hash": _HEX,
        "time_ms": _INT,
        "time": _TEXT,
        "tx_count": _INT,
        "proposer_name": _TEXT,
    }
)

STATUS: Final = _object(
    {
        "chain_id": _TEXT,
        "node": _TEXT,
        "role": {"enum": ["validator", "observer"]},
        "height": _INT,
        "last_block": {
            "oneOf": [{"type": "null"}, _object({"hash": _HEX, "time_ms": _INT, "time": _TEXT})]
        },
        "state_root": _HEX,
        "genesis_hash": _HEX,
        "validators": _list(
            _object(
                {
                    "name": _TEXT,
                    "public_key": _HEX,
                    "bid": _TEXT,
                    "last_signed_height": _NULLABLE_INT,
                }
            )
        ),
        "signed_scan_blocks": _INT,
        "peers": _list(
            _object(
                {
                    "name": _TEXT,
                    "address": _TEXT,
                    "public_key": _HEX,
                    "connected": {"type": "boolean"},
                    "height": _INT,
                }
            )
        ),
        "event_streams": _object({"open": _INT, "max": _INT}),
        "syncing": {"type": "boolean"},
        "ready": {"type": "boolean"},
        "ready_reason": _TEXT,
    }
)
BLOCKS: Final = _object(
    {"height": _INT, "blocks": _list(_BLOCK_SUMMARY), "next_before": _NULLABLE_INT}
)
BLOCK: Final = _object(
    {
        "height": _INT,
        "hash": _HEX,
        "header": _object(
            {
                "chain_id": _TEXT,
                "height": _INT,
                "time_ms": _INT,
                "time": _TEXT,
                "prev_hash": _HEX,
                "last_commit_hash": _HEX,
                "tx_root": _HEX,
                "state_root": _HEX,
                "validators_hash": _HEX,
                "proposer": _HEX,
                "proposer_name": _TEXT,
            }
        ),
        "txs": _list(_object(_TX_SUMMARY)),
        "certificate": {"oneOf": [{"type": "null"}, _SIGNERS]},
        "last_commit": {"oneOf": [{"type": "null"}, _SIGNERS]},
    }
)
TX: Final = _object(
    {
        **_TX_SUMMARY,
        "height": _INT,
        "index": _INT,
        "block_hash": _HEX,
        "time_ms": _INT,
        "time": _TEXT,
        "chain_id": _TEXT,
        "signer_key": _HEX,
        "expires_at_ms": _INT,
        "body": {"type": "object"},
    }
)
PREFIX: Final = _object(
    {
        "prefix": _TEXT,
        "owner": _TEXT,
        "registrars": _list(_TEXT),
        "created_height": _INT,
        "updated_height": _INT,
        "children": _list(_TEXT),
        "identifiers": _list(
            _object({"identifier": _TEXT, "status": {"enum": ["ACTIVE", "REVOKED"]}})
        ),
        "next_after": _NULLABLE_TEXT,
    }
)
ACCOUNT: Final = _object(
    {
        "bid": _TEXT,
        "prefixes": _list(_TEXT),
        "next_prefixes_after": _NULLABLE_TEXT,
        "identifiers": _list(_TEXT),
        "next_identifiers_after": _NULLABLE_TEXT,
    }
)
HISTORY: Final = _object(
    {
        "identifier": _TEXT,
        "owner": _TEXT,
        "status": {"enum": ["ACTIVE", "REVOKED"]},
        "revoke_reason": _TEXT,
        "created_height": _INT,
        "updated_height": _INT,
        "entries": _list(
            _object(
                {
                    "height": _INT,
                    "time_ms": _INT,
                    "time": _TEXT,
                    "tx_id": _HEX,
                    "op": _TEXT,
                    "signer": _TEXT,
                }
            )
        ),
    }
)
GENESIS: Final = _object(
    {
        "chain_id": _TEXT,
        "genesis_time_ms": _INT,
        "validators": _list(_object({"name": _TEXT, "public_key": _HEX})),
        "root_authorities": _list(_TEXT),
        "prefixes": _list(_object({"prefix": _TEXT, "owner": _TEXT})),
    }
)
SEARCH: Final = _object(
    {
        "query": _TEXT,
        "kind": {"enum": ["identifier", "prefix", "account", "block", "tx"]},
        "target": _TEXT,
    }
)


def _parameter(name: str, where: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_LIMIT: Final = _parameter(
    "limit",
    "query",
    f"page size (default {DEFAULT_EXPLORER_PAGE_SIZE})",
    {"type": "integer", "minimum": 1, "maximum": MAX_EXPLORER_PAGE_SIZE},
)


def _get(
    summary: str,
    schema: dict[str, Any],
    parameters: list[dict[str, Any]],
    errors: dict[int, str],
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": summary, "content": {JSON: {"schema": schema}}}
    }
    for status, why in {**errors, 500: "server error"}.items():
        responses[str(status)] = {"description": why, "content": {JSON: {"schema": _ERROR}}}
    responses["503"] = BUSY_RESPONSE
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def openapi_paths() -> dict[str, Any]:
    """The explorer's entries of /openapi.json's `paths`."""
    return {
        "/api/status": _get(
            "the node, chain head, validators, peers and readiness", STATUS, [], {}
        ),
        "/api/blocks": _get(
            "block summaries, latest first",
            BLOCKS,
            [
                _parameter(
                    "before",
                    "query",
                    "only blocks below this height (default: from the head)",
                    {"type": "integer", "minimum": 1},
                ),
                _LIMIT,
            ],
            {400: "malformed before or limit"},
        ),
        "/api/blocks/{ref}": _get(
            "one block: header, txs, certificate signers, proposer",
            BLOCK,
            [
                _parameter(
                    "ref",
                    "path",
                    "a height or a block hash (hex)",
                    {"type": "string", "pattern": "^([0-9]{1,19}|[0-9a-fA-F]{64})$"},
                )
            ],
            {400: "neither a height nor a 64-character hex hash", 404: "no such block"},
        ),
        "/api/txs/{id}": _get(
            "one committed tx",
            TX,
            [
                _parameter(
                    "id",
                    "path",
                    "the tx id (hex)",
                    {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                )
            ],
            {400: "not a 64-character hex id", 404: "no committed tx with that id"},
        ),
        "/api/prefixes/{prefix}": _get(
            "a prefix: owner, registrars, child prefixes, identifiers (paged)",
            PREFIX,
            [
                _parameter("prefix", "path", "a Handle prefix, e.g. 88.608", _TEXT),
                _parameter("after", "query", "next_after of the previous page", _TEXT),
                _LIMIT,
            ],
            {400: "malformed prefix, after or limit", 404: "no such prefix"},
        ),
        "/api/accounts/{bid}": _get(
            "the prefixes and identifiers a BID owns (paged)",
            ACCOUNT,
            [
                _parameter("bid", "path", "a BID (did:bid:…)", _TEXT),
                _parameter("prefixes_after", "query", "next_prefixes_after", _TEXT),
                _parameter("identifiers_after", "query", "next_identifiers_after", _TEXT),
                _LIMIT,
            ],
            {400: "malformed BID or limit"},
        ),
        "/api/history/{identifier}": _get(
            "an identifier's owner, status and changes, latest first",
            HISTORY,
            [
                _parameter("identifier", "path", "prefix/suffix (the suffix may hold /)", _TEXT),
                _parameter(
                    "limit",
                    "query",
                    "the latest entries to show",
                    {"type": "integer", "minimum": 1, "maximum": MAX_EXPLORER_HISTORY_ENTRIES},
                ),
            ],
            {400: "malformed identifier or limit", 404: "not registered"},
        ),
        "/api/search": _get(
            "the view that the search box's text names",
            SEARCH,
            [
                _parameter(
                    "q",
                    "query",
                    "an identifier, Digital Link URL, GTIN, BID, block height or hash, tx "
                    "id or prefix",
                    _TEXT,
                )
            ],
            {400: "empty or malformed", 404: "nothing matches (the message says why)"},
        ),
        "/api/genesis": _get(
            "the genesis file (the page pins it, then checks proof bundles against it)",
            GENESIS,
            [],
            {},
        ),
        "/api/events": {
            "get": {
                "summary": "server-sent events: `hello` (the height) then one `block` event "
                "per committed block (data: height, hash, time_ms, time, tx_count)",
                "responses": {
                    "200": {
                        "description": "the event stream",
                        "content": {"text/event-stream": {"schema": _TEXT}},
                    },
                    "503": {
                        "description": "too many event streams open (MAX_SSE_SUBSCRIBERS), "
                        "or too many connections ([http] max_connections)",
                        "content": {JSON: {"schema": _ERROR}},
                    },
                },
            }
        },
        "/": {
            "get": {
                "summary": "the explorer: a single page (HTML) that reads the endpoints above",
                "responses": {
                    "200": {
                        "description": "the page",
                        "content": {"text/html": {"schema": _TEXT}},
                    },
                    "503": BUSY_RESPONSE,
                },
            }
        },
        "/explorer/{name}": {
            "get": {
                "summary": "the explorer's static files (scripts and style)",
                "parameters": [
                    _parameter(
                        "name", "path", "a file of the page", {"enum": sorted(STATIC_FILE_NAMES)}
                    )
                ],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "text/javascript": {"schema": _TEXT},
                            "text/css": {"schema": _TEXT},
                            "text/html": {"schema": _TEXT},
                        },
                    },
                    "404": {
                        "description": "no such file in the explorer",
                        "content": {JSON: {"schema": _ERROR}},
                    },
                    "503": BUSY_RESPONSE,
                },
            }
        },
    }
