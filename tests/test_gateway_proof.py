"""Proof bundles from real node processes (issue 11 item 4): GET /api/handles/{id}?proof=true
for a present, a revoked and an absent identifier, each bundle checked against the testnet's
genesis file; `spark resolve --export` then `spark verify`, and a tampered export refused.

One two-validator testnet started with `spark testnet`; records written through the public
gRPC API, read through node2's gateway with urllib.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import jsonschema_rs
import pytest

from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.ledger.bundle import verify_bundle
from sparkchain.ledger.genesis import Genesis, parse_genesis
from sparkchain.ledger.proof import ProofError, ProofFailure
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.node.openapi import openapi_document
from tests.helpers.cluster import Cluster, get, http_base

pytestmark = pytest.mark.timeout(180)

BINARY = b"\xff\x00\xfe binary"


def _matches_openapi(status: int, body: object) -> bool:
    responses = openapi_document()["paths"]["/api/handles/{handle}"]["get"]["responses"]
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(body))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("gateway-proof"), validators=2).init()
    try:
        built.start()
        api = built.nodes["node1"].api
        built.spark_ok("prefix", "create", "88", "--key-file", built.root_key_file, "--node", api)
        txs = TxBuilder(built.genesis_chain_id(), built.root_key(), secrets.SystemRandom())
        values = [value(1, "URL", "https://example.com/proof-1"), value(2, "BIN", BINARY)]
        for tx in (
            txs.register("88/Proof-1", values, now_ms=now_ms()),
            txs.register("88/Gone", [value(1, "URL", "https://x/gone")], now_ms=now_ms()),
        ):
            assert built.submit("node1", tx).committed
        assert built.submit("node1", txs.revoke("88/Gone", "recalled", now_ms=now_ms())).committed
        built.wait_in_step(["node1", "node2"])
        yield built
    finally:
        built.stop_all()


@pytest.fixture(scope="module")
def base(cluster: Cluster) -> str:
    return http_base(cluster, "node2")


@pytest.fixture(scope="module")
def genesis(cluster: Cluster) -> Genesis:
    return parse_genesis(Path(cluster.genesis_file).read_bytes())


def test_a_present_record_comes_with_a_bundle_that_verifies(base: str, genesis: Genesis) -> None:
    status, headers, body = get(base, "/api/handles/88/proof-1?proof=true&type=URL")
    assert status == 200 and body["responseCode"] == 1
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert [v["index"] for v in body["values"]] == [1]  # the answer is filtered as asked
    bundle = body["proof"]
    assert bundle["format"] == "sparkchain-proof-bundle" and bundle["version"] == 1
    assert bundle["identifier"] == "88/proof-1"
    # the bundle proves the whole record, binary value included
    shown = {v["index"]: v["data"]["format"] for v in bundle["record"]["view"]["values"]}
    assert shown == {1: "string", 2: "base64"}
    assert _matches_openapi(status, body)
    verified = verify_bundle(bundle, genesis)
    assert verified.record is not None and verified.record.identifier == "88/Proof-1"
    assert (verified.signers, verified.validators) == (2, 2)
    assert verified.height >= 1


def test_an_absent_identifier_is_404_with_a_proof_of_absence(base: str, genesis: Genesis) -> None:
    status, _, body = get(base, "/api/handles/88/never-registered?proof=true")
    assert status == 404 and body["responseCode"] == 100 and body["message"]
    assert body["proof"]["record"] is None
    assert _matches_openapi(status, body)
    assert verify_bundle(body["proof"], genesis).record is None


def test_a_revoked_record_verifies_as_revoked(base: str, genesis: Genesis) -> None:
    status, _, body = get(base, "/api/handles/88/Gone?proof=1")
    assert status == 200 and body["status"] == "REVOKED"
    assert body["proof"]["record"]["view"]["status"] == "REVOKED"
    verified = verify_bundle(body["proof"], genesis)
    assert verified.record is not None and verified.record.revoke_reason == "recalled"


def test_a_served_bundle_with_its_url_changed_is_refused(base: str, genesis: Genesis) -> None:
    _, _, body = get(base, "/api/handles/88/Proof-1?proof=true")
    bundle = body["proof"]
    bundle["record"]["view"]["values"][0]["data"]["value"] = "https://attacker.example/"
    with pytest.raises(ProofError) as refused:
        verify_bundle(bundle, genesis)
    assert refused.value.reason == ProofFailure.VIEW_MISMATCH


def test_without_proof_or_with_proof_false_no_bundle_and_a_bad_value_is_400(base: str) -> None:
    for query in ("", "?proof=false", "?proof=0"):
        status, _, body = get(base, "/api/handles/88/Proof-1" + query)
        assert status == 200 and "proof" not in body
    status, _, body = get(base, "/api/handles/88/Proof-1?proof=maybe")
    assert status == 400 and body["responseCode"] == 2 and "proof" in body["message"]
    assert _matches_openapi(status, body)
    status, _, body = get(base, "/api/handles/no-slash?proof=true")
    assert status == 400 and body["responseCode"] == 102


def test_spark_resolve_export_then_spark_verify(cluster: Cluster, tmp_path: Path) -> None:
    exported = tmp_path / "proof-1.json"
    node = cluster.nodes["node2"].api
    wrote = cluster.spark_ok(
        "resolve", "88/Proof-1", "--export", str(exported),
        "--genesis", cluster.genesis_file, "--node", node,
    )  # fmt: skip
    assert f"wrote {exported}" in wrote and "by 2 of 2 validators" in wrote
    checked = cluster.spark("verify", str(exported), "--genesis", cluster.genesis_file)
    assert checked.code == 0, checked.err
    assert "verified at height" in checked.out and "by 2 of 2 validators" in checked.out
    assert "https://example.com/proof-1" in checked.out

    absent = tmp_path / "absent.json"
    cluster.spark_ok(
        "resolve", "88/Nobody", "--export", str(absent), "--genesis", cluster.genesis_file,
        "--node", node,
    )  # fmt: skip
    checked = cluster.spark("verify", str(absent), "--genesis", cluster.genesis_file, "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)["present"] is False

    bundle = json.loads(exported.read_text(encoding="utf-8"))
    bundle["header"]["view"]["height"] += 1
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bundle), encoding="utf-8")
    refused = cluster.spark("verify", str(tampered), "--genesis", cluster.genesis_file)
    assert refused.code == 1
    assert "VIEW_MISMATCH" in refused.err and "header.view" in refused.err
