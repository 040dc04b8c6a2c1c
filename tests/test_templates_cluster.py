"""Metadata templates and Spark keys from the CLI against a real testnet (issue 16 parts 1-2):
a user creates a template, registers with --template/--meta, gets TEMPLATE_MISMATCH for a bad
document (from the CLI's own check and from the validators when a tx skips it), and reads the
metadata by property name in the gateway's JSON; a Spark key imported with the CLI signs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sparkchain.cli.client import now_ms
from sparkchain.identifiers.errors import ERROR_CODE_METADATA_KEY
from sparkchain.identifiers.tx import TxBuilder, value
from tests.helpers.cluster import Cluster, get, http_base

pytestmark = pytest.mark.timeout(240)

SPARK_PRIVATE_KEY = "priSPKrSftQVRWM33dWxxSmwhRX7ArgyUmwV3pXun79QKsQkW2"
SPARK_BID = "did:bid:ef28Wz8twCynVe6PAnamLYCAFJYgJSnMh"
SCHEMA = {
    "type": "object",
    "required": ["lot", "made"],
    "properties": {
        "lot": {"type": "string", "pattern": r"^L\d{4}$"},
        "made": {"type": "string", "format": "date"},
        "weight": {"type": "number", "minimum": 0},
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("templates"), validators=1).init()
    try:
        built.start()
        built.spark_ok("prefix", "create", "88", *as_root(built))
        yield built
    finally:
        built.stop_all()


def as_root(cluster: Cluster) -> tuple[str, ...]:
    return ("--key-file", cluster.root_key_file, "--node", cluster.nodes["node1"].api)


def write_json(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_template_create_register_mismatch_and_gateway_view(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.nodes["node1"].api
    schema = write_json(tmp_path / "schema.json", SCHEMA)
    cluster.spark_ok("template", "create", "88/T-product", "--schema", schema, *as_root(cluster))
    shown = json.loads(
        cluster.spark_ok("template", "show", "88/T-product", "--node", node, "--json")
    )
    assert shown["schema"] == SCHEMA and shown["index"] == 1

    good = write_json(tmp_path / "good.json", {"lot": "L2025", "made": "2025-11-24", "weight": 2})
    cluster.spark_ok(
        "register", "88/SN-1", "--url", "https://example.com/sn-1",
        "--template", "88/T-product", "--meta", good, *as_root(cluster),
    )  # fmt: skip

    bad = write_json(tmp_path / "bad.json", {"lot": "2025", "made": "2025-11-24"})
    refused = cluster.spark(
        "register", "88/SN-2", "--template", "88/T-product", "--meta", bad, *as_root(cluster)
    )
    assert refused.code == 1
    assert "error: TEMPLATE_MISMATCH:" in refused.err and "property lot (index 2000)" in refused.err

    # a client that skips the check is refused by the validators, with the same code
    txs = TxBuilder(cluster.genesis_chain_id(), cluster.root_key(), secrets.SystemRandom())
    tx = txs.register(
        "88/SN-3",
        [value(1001, "spark.template-ref", "88/T-product"), value(2000, "lot", "nope")],
        now_ms=now_ms(),
    )
    with pytest.raises(grpc.RpcError) as caught:
        cluster.submit("node1", tx)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    trailing = dict(caught.value.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert trailing[ERROR_CODE_METADATA_KEY] == "TEMPLATE_MISMATCH"
    assert "property made" in caught.value.details()

    status, _, answer = get(http_base(cluster, "node1"), "/api/handles/88/SN-1")
    assert status == 200
    assert answer["template"] == {
        "identifier": "88/T-product",
        "properties": {
            "lot": {"index": 2000, "value": "L2025"},
            "made": {"index": 2000, "value": "2025-11-24"},
            "weight": {"index": 2000, "value": 2},
        },
    }


def test_a_spark_key_imported_with_the_cli_owns_what_it_registers(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.nodes["node1"].api
    imported = json.loads(
        cluster.spark_ok(
            "keys", "import", "sparky", "--spark-private-key", SPARK_PRIVATE_KEY, "--json"
        )
    )
    assert imported["bid"] == SPARK_BID
    cluster.spark_ok("prefix", "create", "88.1", "--owner", SPARK_BID, *as_root(cluster))
    cluster.spark_ok(
        "register", "88.1/K-1", "--url", "https://example.com/k", "--key", "sparky",
        "--node", node,
    )  # fmt: skip
    resolved = json.loads(cluster.spark_ok("resolve", "88.1/K-1", "--node", node, "--json"))
    assert resolved["owner"] == SPARK_BID
    exported = cluster.spark("keys", "export", "sparky", "--format", "spark")
    assert exported.code == 0 and exported.out.strip() == SPARK_PRIVATE_KEY
    assert "warning:" in exported.err
