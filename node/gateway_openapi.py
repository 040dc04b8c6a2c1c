"""The OpenAPI description of node/gateway.py's routes (Handle REST, /healthz, /readyz),
for node/openapi.py: parameters, and a JSON Schema for every status each answers."""

from __future__ import annotations

from typing import Any

from sparkchain.identifiers.limits import DEFAULT_HTTP_PAGE_SIZE, MAX_HTTP_PAGE_SIZE
from sparkchain.node.gateway import (
    HS_ERROR,
    HS_HANDLE_NOT_FOUND,
    HS_INVALID_HANDLE,
    HS_SUCCESS,
    HS_VALUES_NOT_FOUND,
)
from sparkchain.node.gateway_proof import PROOF_QUERY, VALUE_SCHEMA, bundle_schema
from sparkchain.node.openapi import BUSY_RESPONSE, JSON_TYPE, json_response

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["responseCode", "message"],
    "properties": {
        "responseCode": {
            "type": "integer",
            "enum": [HS_ERROR, HS_HANDLE_NOT_FOUND, HS_INVALID_HANDLE],
        },
        "handle": {"type": "string"},
        "message": {"type": "string"},
    },
}
# a record naming a metadata template at index 1001: its metadata by property name
_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["identifier", "properties"],
    "properties": {
        "identifier": {"type": "string"},
        "properties": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["index", "value"],
                "properties": {"index": {"type": "integer"}, "value": {}},
            },
        },
    },
}
_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["responseCode", "handle", "registeredAs", "values"],
    "properties": {
        "responseCode": {"enum": [HS_SUCCESS, HS_VALUES_NOT_FOUND]},
        "handle": {"type": "string"},
        "registeredAs": {"type": "string"},
        "status": {"const": "REVOKED"},
        "values": {"type": "array", "items": VALUE_SCHEMA},
        "template": _TEMPLATE_SCHEMA,
        "proof": bundle_schema(),
    },
}
# 404 with ?proof=true: the answer carries the proof of the absence
_NOT_FOUND_SCHEMA: dict[str, Any] = {
    **_ERROR_SCHEMA,
    "properties": {**_ERROR_SCHEMA["properties"], "proof": bundle_schema()},
}
_LISTING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["responseCode", "prefix", "totalCount", "page", "pageSize", "handles"],
    "properties": {
        "responseCode": {"const": HS_SUCCESS},
        "prefix": {"type": "string"},
        "totalCount": {"type": "string", "pattern": "^[0-9]+$"},
        "page": {"type": "integer", "minimum": 0},
        "pageSize": {"type": "integer", "minimum": 1, "maximum": MAX_HTTP_PAGE_SIZE},
        "handles": {"type": "array", "items": {"type": "string"}},
        "message": {"type": "string"},
    },
}
_READINESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ready", "height"],
    "properties": {
        "ready": {"type": "boolean"},
        "height": {"type": "integer", "minimum": 0},
        "reason": {"type": "string"},
    },
}
_PRETTY = {
    "name": "pretty",
    "in": "query",
    "description": "Indent the JSON answer (any value but false or 0)",
    "schema": {"type": "string"},
}


def _handle_errors(*statuses: int) -> dict[str, Any]:
    said = {
        400: "A malformed handle (102) or query parameter (2)",
        404: "No such handle or prefix (100)",
        500: "A server error (2)",
    }
    answers = {
        str(status): json_response(
            said[status], _NOT_FOUND_SCHEMA if status == 404 else _ERROR_SCHEMA
        )
        for status in statuses
    }
    if 400 in statuses:  # aiohttp refuses a request line over the bound unread, in plain text
        answers["400"]["description"] += "; or a request line over MAX_HTTP_REQUEST_LINE_BYTES"
        answers["400"]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return {**answers, "503": BUSY_RESPONSE}


def openapi_paths() -> dict[str, Any]:
    """node/gateway.py's routes, for node/openapi.py."""
    return {
        "/api/handles/{handle}": {
            "get": {
                "summary": "A handle's record, in Handle.Net's REST shape",
                "operationId": "resolveHandle",
                "parameters": [
                    {
                        "name": "handle",
                        "in": "path",
                        "required": True,
                        "description": "PREFIX/SUFFIX; the suffix may hold slashes",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    {
                        "name": "type",
                        "in": "query",
                        "description": "Only values of these types (OR-ed with index)",
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                    },
                    {
                        "name": "index",
                        "in": "query",
                        "description": "Only values at these indexes (OR-ed with type)",
                        "schema": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                        },
                        "style": "form",
                        "explode": True,
                    },
                    {
                        "name": PROOF_QUERY,
                        "in": "query",
                        "description": "true: add the proof bundle (docs/proof-bundle.md) of "
                        "the whole record, or of its absence on a 404, under `proof`",
                        "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                    },
                    _PRETTY,
                ],
                "responses": {
                    "200": json_response(
                        "The record (1), or no value matching the filter (200)", _RECORD_SCHEMA
                    ),
                    **_handle_errors(400, 404, 500),
                    "503": {
                        **BUSY_RESPONSE,
                        "description": "Too many connections at once, or (with proof) no "
                        "block committed yet to prove against",
                    },
                },
            }
        },
        "/api/handles": {
            "get": {
                "summary": "The handles under a prefix, a page at a time",
                "operationId": "listHandles",
                "parameters": [
                    {
                        "name": "prefix",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    },
                    {
                        "name": "page",
                        "in": "query",
                        "description": "The page, from 0",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                    {
                        "name": "pageSize",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_HTTP_PAGE_SIZE,
                            "default": DEFAULT_HTTP_PAGE_SIZE,
                        },
                    },
                    _PRETTY,
                ],
                "responses": {
                    "200": json_response("A page of handles", _LISTING_SCHEMA),
                    **_handle_errors(400, 404, 500),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "The process is alive",
                "operationId": "healthz",
                "responses": {
                    "200": json_response(
                        "Alive",
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "alive"}},
                        },
                    ),
                    "503": BUSY_RESPONSE,
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Caught up with its peers and, on a validator, linked to a quorum",
                "operationId": "readyz",
                "responses": {
                    "200": json_response("Ready", _READINESS_SCHEMA),
                    "503": json_response(
                        "Not ready (`reason` says why), or too many connections",
                        {
                            "anyOf": [
                                _READINESS_SCHEMA,
                                BUSY_RESPONSE["content"][JSON_TYPE]["schema"],
                            ]
                        },
                    ),
                },
            }
        },
    }
