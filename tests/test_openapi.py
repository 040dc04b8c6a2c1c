"""The gateway's OpenAPI document (node/openapi.py, issue 11 item 6): valid OpenAPI 3.1 as
schemathesis loads and checks it, and in step with the routes the gateway's aiohttp app
registers, both ways, so a route added without a description fails here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web

from sparkchain.node.config import HttpConfig
from sparkchain.node.gateway import Gateway
from sparkchain.node.openapi import DESCRIBED_MODULES, openapi_document, package_version
from tests.helpers.api_node import FakeStatus
from tests.helpers.ledger import LedgerChain


@pytest.fixture
def app(tmp_path: Path) -> Iterator[web.Application]:
    chain = LedgerChain(tmp_path / "ledger")
    try:
        config = HttpConfig("127.0.0.1:1")
        yield Gateway(config, tmp_path / "config.toml", chain.ledger, FakeStatus(), True).app()
    finally:
        chain.close()


def routed(app: web.Application) -> set[tuple[str, str]]:
    """(method, path pattern) of every route, as OpenAPI spells them (lower-case method)."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"  # aiohttp adds HEAD to GET
    }


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == package_version() != "0+unknown"
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # against the OpenAPI 3.1 meta-schema; raises what is wrong
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(described(document))


def test_the_document_fails_validation_when_it_is_malformed() -> None:
    broken = openapi_document()
    broken["paths"]["/healthz"]["get"]["responses"] = "none"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_response_has_a_json_schema_that_compiles() -> None:
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], f"{method} {path} lists no response"
            for status, response in operation["responses"].items():
                content = response.get("content")
                if status.startswith("3"):  # a redirect says where in its headers
                    assert "Location" in response["headers"], f"{method} {path} {status}"
                    continue
                assert content, f"{method} {path} {status} has no body schema"
                for media in content.values():
                    jsonschema_rs.validator_for(media["schema"])  # raises if it is no schema


def test_every_route_is_described_and_every_description_routed(app: web.Application) -> None:
    document = openapi_document()
    assert routed(app) == described(document)
    assert {"/api/handles/{handle}", "/api/handles", "/metrics", "/openapi.json"} <= set(
        document["paths"]
    )


def test_error_statuses_have_error_schemas() -> None:
    resolve = openapi_document()["paths"]["/api/handles/{handle}"]["get"]["responses"]
    assert set(resolve) == {"200", "400", "404", "500", "503"}
    error = resolve["404"]["content"]["application/json"]["schema"]
    assert error["required"] == ["responseCode", "message"]


def test_each_module_is_described_once() -> None:
    assert len(set(DESCRIBED_MODULES)) == len(DESCRIBED_MODULES)
    json.dumps(openapi_document())  # JSON as served
