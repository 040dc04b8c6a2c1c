"""The HTTP gateway of real node processes (issue 11, items 1, 2 and 5's health checks):
Handle REST reads in Handle.Net's shape, listing, /healthz and /readyz, over real HTTP.

A two-validator testnet started with `spark testnet`; its records are written through the
public gRPC API and read back through each node's gateway with urllib.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkchain.cli.main import main
from sparkchain.identifiers.limits import MAX_HTTP_REQUEST_LINE_BYTES
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node.home import NodeHome, free_loopback_ports
from sparkchain.node.mempool import wall_clock_ms as now_ms
from tests.helpers.cluster import Cluster, get, http_base, until

pytestmark = pytest.mark.timeout(180)

BINARY = b"\xff\x00\xfe binary"
LISTED = [f"88/L-{i}" for i in range(5)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("gateway"), validators=2).init()
    try:
        built.start()
        api = built.nodes["node1"].api
        built.spark_ok("prefix", "create", "88", "--key-file", built.root_key_file, "--node", api)
        txs = TxBuilder(built.genesis_chain_id(), built.root_key(), secrets.SystemRandom())
        writes = [
            txs.register(
                "88/Gate-1",
                [
                    value(1, "URL", "https://example.com/gate-1"),
                    value(2, "EMAIL", "ops@example.com"),
                    value(3, "HS_PUBKEY", BINARY),
                ],
                now_ms=now_ms(),
            ),
            txs.register("88/a/b/c", [value(1, "URL", "https://example.com/abc")], now_ms=now_ms()),
            txs.register("88/Gone", [value(1, "URL", "https://example.com/gone")], now_ms=now_ms()),
            *(
                txs.register(
                    name, [value(1, "URL", f"https://example.com/{name}")], now_ms=now_ms()
                )
                for name in LISTED
            ),
        ]
        for tx in writes:
            assert built.submit("node1", tx).committed
        assert built.submit("node1", txs.revoke("88/Gone", "recalled", now_ms=now_ms())).committed
        built.wait_in_step(["node1", "node2"])
        yield built
    finally:
        built.stop_all()


@pytest.fixture(scope="module")
def base(cluster: Cluster) -> str:
    return http_base(cluster, "node2")


# ---- Handle REST: resolve ----


def test_a_handle_reads_in_handle_net_shape_with_text_and_base64_values(base: str) -> None:
    status, headers, body = get(base, "/api/handles/88/Gate-1")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert body["responseCode"] == 1
    assert body["handle"] == "88/Gate-1"
    assert "status" not in body
    values = {v["index"]: v for v in body["values"]}
    assert values[1]["type"] == "URL"
    assert values[1]["data"] == {"format": "string", "value": "https://example.com/gate-1"}
    assert values[1]["ttl"] == 86400
    assert values[1]["timestamp"].endswith("Z")
    assert values[3]["data"] == {
        "format": "base64",
        "value": base64.b64encode(BINARY).decode("ascii"),
    }


def test_type_and_index_filters_are_or_ed(base: str) -> None:
    def indexes(query: str) -> list[int]:
        status, _, body = get(base, "/api/handles/88/Gate-1?" + query)
        assert status == 200 and body["responseCode"] == 1
        return sorted(v["index"] for v in body["values"])

    assert indexes("type=URL") == [1]
    assert indexes("type=URL&type=EMAIL") == [1, 2]
    assert indexes("index=3") == [3]
    assert indexes("index=2&index=3") == [2, 3]
    assert indexes("type=URL&index=3") == [1, 3]


def test_no_value_matching_the_filter_is_code_200_with_no_values(base: str) -> None:
    status, _, body = get(base, "/api/handles/88/Gate-1?type=NOPE")
    assert (status, body["responseCode"], body["values"]) == (200, 200, [])


def test_lookups_ignore_ascii_case_and_say_the_registered_spelling(base: str) -> None:
    status, _, body = get(base, "/api/handles/88/gATE-1")
    assert status == 200
    assert body["handle"] == "88/gATE-1"
    assert body["registeredAs"] == "88/Gate-1"


def test_a_suffix_may_hold_slashes(base: str) -> None:
    status, _, body = get(base, "/api/handles/88/a/b/c")
    assert status == 200
    assert body["values"][0]["data"]["value"] == "https://example.com/abc"


def test_an_absent_handle_is_code_100_and_http_404(base: str) -> None:
    status, headers, body = get(base, "/api/handles/88/nobody")
    assert (status, body["responseCode"]) == (404, 100)
    assert body["message"]
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_a_malformed_handle_is_code_102_and_http_400(base: str) -> None:
    status, _, body = get(base, "/api/handles/no-slash-here")
    assert (status, body["responseCode"]) == (400, 102)
    assert body["message"]


def test_a_malformed_index_is_http_400_with_a_message(base: str) -> None:
    status, _, body = get(base, "/api/handles/88/Gate-1?index=one")
    assert status == 400
    assert "index" in body["message"]


def test_a_revoked_handle_answers_its_values_and_status(base: str) -> None:
    status, _, body = get(base, "/api/handles/88/Gone")
    assert status == 200
    assert body["status"] == "REVOKED"
    assert body["values"][0]["data"]["value"] == "https://example.com/gone"


def test_pretty_indents_the_json(base: str) -> None:
    with urllib.request.urlopen(base + "/api/handles/88/Gate-1?pretty", timeout=10) as response:
        assert b'\n  "responseCode": 1' in response.read()


# ---- Handle REST: listing ----


def test_listing_pages_through_the_handles_under_a_prefix(base: str) -> None:
    status, headers, body = get(base, "/api/handles?prefix=88&page=0&pageSize=3")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    every = {"88/Gate-1", "88/a/b/c", "88/Gone", *LISTED}
    assert body["totalCount"] == str(len(every))
    assert (body["responseCode"], body["page"], body["pageSize"]) == (1, 0, 3)
    pages = [body["handles"]]
    for page in (1, 2):
        _, _, body = get(base, f"/api/handles?prefix=88&page={page}&pageSize=3")
        pages.append(body["handles"])
    assert [len(p) for p in pages] == [3, 3, 2]
    assert {h for p in pages for h in p} == every


def test_listing_refuses_a_page_size_above_the_bound_and_an_absent_prefix(base: str) -> None:
    status, _, body = get(base, "/api/handles?prefix=88&pageSize=1000000")
    assert status == 400 and "pageSize" in body["message"]
    status, _, body = get(base, "/api/handles?prefix=77")
    assert (status, body["responseCode"]) == (404, 100)
    status, _, body = get(base, "/api/handles")
    assert status == 400 and "prefix" in body["message"]


# ---- health, readiness, status ----


def test_healthz_and_readyz_while_both_validators_are_up(cluster: Cluster) -> None:
    for base in (http_base(cluster, "node1"), http_base(cluster, "node2")):
        assert get(base, "/healthz")[0] == 200
        until(lambda base=base: get(base, "/readyz")[0] == 200, 30, f"{base} ready")  # type: ignore[misc]


def test_readyz_turns_false_without_a_quorum_and_true_again(cluster: Cluster) -> None:
    base1 = http_base(cluster, "node1")
    cluster.stop("node2")
    try:
        until(lambda: get(base1, "/readyz")[0] == 503, 30, "node1 not ready")
        _, _, body = get(base1, "/readyz")
        assert body["ready"] is False and "quorum" in body["reason"]
        assert get(base1, "/healthz")[0] == 200
    finally:
        cluster.start("node2")
    until(lambda: get(base1, "/readyz")[0] == 200, 30, "node1 ready again")


def test_testnet_status_and_spark_status_name_the_gateway(cluster: Cluster) -> None:
    statuses = json.loads(cluster.spark_ok("testnet", "status", "--dir", cluster.net, "--json"))
    assert all(s["http"].startswith("127.0.0.1:") for s in statuses)
    node1 = next(s for s in statuses if s["name"] == "node1")
    out = cluster.spark_ok("status", "--node", cluster.nodes["node1"].api, "--json")
    assert json.loads(out)["http"] == node1["http"]


# ---- a port in use ----


def test_a_node_refuses_an_http_port_in_use(tmp_path: Path) -> None:
    api_port, p2p_port = free_loopback_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        root = tmp_path / "home"
        argv = ["init", "--home", str(root), "--api-listen", f"127.0.0.1:{api_port}"]
        assert main([*argv, "--p2p-listen", f"127.0.0.1:{p2p_port}", "--http-listen", taken]) == 0
        assert NodeHome(root).config().http.listen == taken
        done = subprocess.run(
            [sys.executable, "-m", "sparkchain.node", "--home", str(root)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode != 0
    assert f"error: ADDRESS_IN_USE: {taken} is already in use" in done.stderr
    assert "http.listen" in done.stderr


def test_a_request_line_over_the_bound_is_refused(base: str) -> None:
    status, _ = get_status(base, "/api/handles/88/" + "x" * MAX_HTTP_REQUEST_LINE_BYTES)
    assert status == 400
    assert get(base, "/api/handles/88/Gate-1")[0] == 200  # the gateway still serves


def get_status(base: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
