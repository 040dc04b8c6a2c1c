"""The gateway's OpenAPI 3.1 document, served at `GET /openapi.json` (issue 11 item 6).

Each gateway module's routes are described by an `openapi_paths() -> dict[str, Any]` (the
document's "paths" entries, JSON Schemas inline, a response for every status it returns), in
the module itself or beside it (node/gateway_openapi.py for node/gateway.py); this module
merges those of DESCRIBED_MODULES, so describing a new gateway module is one line here.
tests/test_openapi.py checks that every route of the gateway's aiohttp app is described and
every described path is a route, so a route added without docs fails.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

OPENAPI_VERSION = "3.1.0"
# the modules whose openapi_paths() the document holds
DESCRIBED_MODULES = (
    "sparkchain.node.gateway_openapi",
    "sparkchain.node.gateway_gs1",
    "sparkchain.node.gateway_explorer",
    "sparkchain.node.metrics",
    "sparkchain.node.openapi",
)

JSON_TYPE = "application/json"
# what every route answers when the gateway serves [http] max_connections already
BUSY_RESPONSE: dict[str, Any] = {
    "description": "Too many connections at once ([http] max_connections); retry later",
    "content": {
        JSON_TYPE: {
            "schema": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}},
            }
        }
    },
}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI response with a JSON body of `schema`."""
    return {"description": description, "content": {JSON_TYPE: {"schema": schema}}}


def package_version() -> str:
    try:
        return version("sparkchain")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def openapi_document() -> dict[str, Any]:
    """The whole document: info, and the paths every described module gives."""
    paths: dict[str, Any] = {}
    for name in DESCRIBED_MODULES:
        for path, item in importlib.import_module(name).openapi_paths().items():
            if path in paths:
                raise ValueError(f"{name} describes {path} again")
            paths[path] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "sparkchain node HTTP gateway",
            "version": package_version(),
            "description": (
                "Handle REST reads in the shape Handle.Net servers speak, health and "
                "readiness, Prometheus metrics (DESIGN §10)."
            ),
        },
        "paths": paths,
    }


@cache
def _document_bytes() -> bytes:
    return json.dumps(openapi_document(), ensure_ascii=False).encode("utf-8")


async def serve_openapi(request: web.Request) -> web.Response:
    """GET /openapi.json"""
    return web.Response(body=_document_bytes(), content_type=JSON_TYPE)


def openapi_paths() -> dict[str, Any]:
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document: the gateway's OpenAPI 3.1 description",
                "operationId": "openapi",
                "responses": {
                    "200": json_response("The OpenAPI document", {"type": "object"}),
                    "503": BUSY_RESPONSE,
                },
            }
        }
    }
