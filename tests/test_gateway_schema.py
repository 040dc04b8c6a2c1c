"""The gateway of a real node process driven by schemathesis from its own /openapi.json
(issue 11 item 6): for every operation, generated requests (valid and invalid ones) get no
5xx, a documented status, a documented content type and a body that matches its schema.

A two-validator `spark testnet` holding records of text and binary values, a revoked one,
and a few under a second prefix for the listing. The examples are bounded and hypothesis
is derandomized, so the run is the same on every machine and stays well under a minute.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node.mempool import wall_clock_ms as now_ms
from tests.helpers.cluster import Cluster, http_base

pytestmark = pytest.mark.timeout(300)

EXAMPLES = 100  # per operation and mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = Cluster(tmp_path_factory.mktemp("schema"), validators=2).init()
    try:
        cluster.start()
        api = cluster.nodes["node1"].api
        for prefix in ("88", "88.608"):
            cluster.spark_ok(
                "prefix", "create", prefix, "--key-file", cluster.root_key_file, "--node", api
            )
        txs = TxBuilder(cluster.genesis_chain_id(), cluster.root_key(), secrets.SystemRandom())
        writes = [
            txs.register(
                "88/Text-1",
                [value(1, "URL", "https://example.com/1"), value(2, "HS_PUBKEY", b"\xff\x00")],
                now_ms=now_ms(),
            ),
            txs.register("88/Gone", [value(1, "URL", "https://example.com/g")], now_ms=now_ms()),
            *(
                txs.register(
                    f"88.608/SN-{i}", [value(1, "EMAIL", "a@example.com")], now_ms=now_ms()
                )
                for i in range(3)
            ),
        ]
        for tx in writes:
            assert cluster.submit("node1", tx).committed
        assert cluster.submit("node1", txs.revoke("88/Gone", "recalled", now_ms=now_ms())).committed
        cluster.wait_in_step(["node1", "node2"])
        yield http_base(cluster, "node1")
    finally:
        cluster.stop_all()


def run_cases(strategy: SearchStrategy[Any], base_url: str, examples: int) -> None:
    """Call and validate `examples` cases of `strategy`, the same ones on every run."""

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)

    call()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_gateway_answers_as_its_openapi_document_says(
    base_url: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own path, /openapi.json (tests/test_openapi.py)
    assert len(operations) >= 5
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.definition.raw.get("parameters"):
            continue  # nothing to make invalid
        if "text/event-stream" in operation.definition.raw["responses"]["200"].get("content", {}):
            continue  # a stream never ends (tests/test_gateway_explorer.py reads its events)
        run_cases(operation.as_strategy(mode), base_url, EXAMPLES)


@pytest.mark.parametrize("handle", ["88/Text-1", "88/Gone", "88.608/SN-1", "88/absent"])
def test_records_that_exist_answer_as_documented_whatever_the_query(
    base_url: str, handle: str
) -> None:
    """Generated handles are almost never registered ones: here the handle is fixed and
    the filters are generated, so record bodies (text, base64, revoked) are checked too."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operation = schema["/api/handles/{handle}"]["GET"]
    case = operation.Case(path_parameters={"handle": handle})
    response = case.call(base_url=base_url, timeout=10)
    assert response.status_code == (404 if handle == "88/absent" else 200)
    strategy = operation.as_strategy(path_parameters={"handle": handle})
    run_cases(strategy, base_url, EXAMPLES // 2)


@pytest.mark.parametrize("prefix", ["88", "88.608", "99"])
def test_listings_answer_as_documented_whatever_the_paging(base_url: str, prefix: str) -> None:
    """As above, with the prefix fixed and the paging generated."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operation = schema["/api/handles"]["GET"]
    response = operation.Case(query={"prefix": prefix}).call(base_url=base_url, timeout=10)
    assert response.status_code == (404 if prefix == "99" else 200)
    run_cases(operation.as_strategy(query={"prefix": prefix}), base_url, EXAMPLES // 2)


def test_a_handle_holding_a_newline_is_a_handle_rest_error_not_a_plain_404(base_url: str) -> None:
    """Found by the test above: the route took any character but a newline, so aiohttp
    answered such a handle with its own plain-text 404."""
    try:
        with urllib.request.urlopen(base_url + "/api/handles/88/a%0Ab", timeout=10) as response:
            status, content_type, body = (
                response.status,
                response.headers["Content-Type"],
                response.read(),
            )
    except urllib.error.HTTPError as error:
        status, content_type, body = error.code, error.headers["Content-Type"], error.read()
    assert content_type.startswith("application/json")
    assert (status, json.loads(body)["responseCode"]) == (400, 102)
