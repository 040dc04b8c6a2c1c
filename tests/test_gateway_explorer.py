"""The explorer's JSON reads, live feed and static page on real node processes (issue 12).

A two-validator testnet (tests/helpers/explorer_net.py) read through node2's gateway with
urllib; every answer is also checked against the schema its OpenAPI entry declares.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from sparkchain.identifiers.limits import MAX_EXPLORER_PAGE_SIZE, MAX_SSE_SUBSCRIBERS
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.ledger.genesis import parse_genesis
from sparkchain.node.explorer_openapi import STATIC_FILE_NAMES
from sparkchain.node.explorer_vendor import vendor_files, vendor_records
from sparkchain.node.gateway_explorer import STATIC_DIR, STATIC_FILES, openapi_paths
from sparkchain.node.mempool import wall_clock_ms as now_ms
from tests.helpers.cluster import get as http_get
from tests.helpers.cluster import until
from tests.helpers.explorer_net import (
    CHILD_PREFIX,
    GS1_GTIN_RECORD,
    GS1_PRODUCT,
    GTIN,
    OWNED_BY_ALICE,
    PAGED,
    PREFIX,
    PRODUCT,
    REVOKED,
    ExplorerNet,
    start_explorer_net,
)

pytestmark = pytest.mark.timeout(180)

ALL_UNDER_PREFIX = {PRODUCT, GS1_PRODUCT, GS1_GTIN_RECORD, REVOKED, OWNED_BY_ALICE, *PAGED}
# an http(s) URL or a protocol-relative one: the page may name no other host
EXTERNAL_URL = re.compile(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|https?://", re.I)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerNet]:
    built = start_explorer_net(tmp_path_factory.mktemp("explorer"))
    try:
        yield built
    finally:
        built.cluster.stop_all()


def matches(schema: dict[str, Any], answer: Any, where: str = "$") -> None:
    """A small JSON Schema check (type, required, properties, items, enum, oneOf)."""
    if "oneOf" in schema:
        fits = 0
        for option in schema["oneOf"]:
            try:
                matches(option, answer, where)
                fits += 1
            except AssertionError:
                pass
        assert fits == 1, f"{where}: {answer!r} fits {fits} of oneOf"
        return
    if "enum" in schema:
        assert answer in schema["enum"], f"{where}: {answer!r} not in {schema['enum']}"
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    python = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "boolean": bool,
        "null": type(None),
    }
    if kinds:
        assert any(
            isinstance(answer, python[k]) and not (k == "integer" and isinstance(answer, bool))
            for k in kinds
        ), f"{where}: {answer!r} is not {kinds}"
    if isinstance(answer, dict):
        for name in schema.get("required", []):
            assert name in answer, f"{where}: {name} missing"
        for name, sub in schema.get("properties", {}).items():
            if name in answer:
                matches(sub, answer[name], f"{where}.{name}")
    if isinstance(answer, list) and "items" in schema:
        for i, item in enumerate(answer):
            matches(schema["items"], item, f"{where}[{i}]")


def get(net: ExplorerNet, path: str, template: str) -> tuple[int, Any]:
    """GET `path`, checking the answer against `template`'s OpenAPI response schema."""
    status, headers, body = http_get(net.base, path)
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Access-Control-Allow-Origin"] == "*"
    responses = openapi_paths()[template]["get"]["responses"]
    assert str(status) in responses, f"{path}: status {status} is not in the OpenAPI entry"
    matches(responses[str(status)]["content"]["application/json"]["schema"], body)
    return status, body


# ---- the network ----


def test_status_names_the_node_the_head_and_each_validators_last_signed_height(
    net: ExplorerNet,
) -> None:
    status, body = get(net, "/api/status", "/api/status")
    assert status == 200
    assert body["node"] == "node2" and body["role"] == "validator"
    assert body["chain_id"] == net.cluster.genesis_chain_id()
    assert body["height"] >= 10
    assert body["ready"] is True and body["ready_reason"] == ""
    names = {v["name"]: v for v in body["validators"]}
    assert set(names) == {"node1", "node2"}
    for validator in names.values():
        # two validators: a quorum is both, so each signed a recent block
        assert 1 <= validator["last_signed_height"] <= body["height"]
        assert validator["bid"].startswith("did:bid:")
    (peer,) = body["peers"]
    assert peer["name"] == "node1" and peer["connected"] is True
    head = body["last_block"]
    _, block = get(net, f"/api/blocks/{head['hash']}", "/api/blocks/{ref}")
    assert block["header"]["state_root"] == body["state_root"] or block["height"] < body["height"]


def test_genesis_is_the_nodes_and_hashes_as_its_status_says(net: ExplorerNet) -> None:
    status, genesis = get(net, "/api/genesis", "/api/genesis")
    assert status == 200
    parsed = parse_genesis(json.dumps(genesis).encode())
    assert parsed.genesis_hash.hex() == get(net, "/api/status", "/api/status")[1]["genesis_hash"]
    on_disk = parse_genesis(Path(net.cluster.genesis_file).read_bytes())
    assert parsed == on_disk


# ---- blocks ----


def test_blocks_page_latest_first_and_pages_join_without_gaps(net: ExplorerNet) -> None:
    status, first = get(net, "/api/blocks?limit=3", "/api/blocks")
    assert status == 200
    heights = [b["height"] for b in first["blocks"]]
    assert heights == sorted(heights, reverse=True) and len(heights) == 3
    assert heights[0] >= first["height"] - 1
    _, second = get(net, f"/api/blocks?limit=3&before={first['next_before']}", "/api/blocks")
    assert second["blocks"][0]["height"] == heights[-1] - 1
    _, oldest = get(net, "/api/blocks?limit=5&before=3", "/api/blocks")
    assert [b["height"] for b in oldest["blocks"]] == [2, 1]
    assert oldest["next_before"] is None


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        f"limit={MAX_EXPLORER_PAGE_SIZE + 1}",
        "before=abc",
        "before=0",
        "before=" + "9" * 5000,
    ],
)
def test_blocks_refuse_a_bad_page_with_a_message(net: ExplorerNet, query: str) -> None:
    status, body = get(net, f"/api/blocks?{query}", "/api/blocks")
    assert status == 400
    assert query.split("=")[0] in body["message"]


def test_a_block_by_height_and_by_hash_shows_header_txs_signers_and_proposer(
    net: ExplorerNet,
) -> None:
    _, tx = get(net, f"/api/txs/{net.register_tx_id}", "/api/txs/{id}")
    status, block = get(net, f"/api/blocks/{tx['height']}", "/api/blocks/{ref}")
    assert status == 200
    assert block["hash"] == tx["block_hash"]
    assert {"id": net.register_tx_id, "op": "register", "signer": net.root_bid,
            "subject": PRODUCT} in block["txs"]  # fmt: skip
    assert block["header"]["proposer_name"] in ("node1", "node2")
    signers = {s["name"] for s in block["certificate"]["signers"]}
    assert signers == {"node1", "node2"}
    assert block["certificate"]["block_hash"] == block["hash"]
    _, by_hash = get(net, f"/api/blocks/{block['hash']}", "/api/blocks/{ref}")
    assert by_hash == block


@pytest.mark.parametrize(
    ("ref", "code", "says"),
    [("999999", 404, "no block at height 999999"), ("xyz", 400, "hexadecimal"),
     ("ab" * 32, 404, "no block with hash")],
)  # fmt: skip
def test_an_unknown_or_malformed_block_is_explained(
    net: ExplorerNet, ref: str, code: int, says: str
) -> None:
    status, body = get(net, f"/api/blocks/{ref}", "/api/blocks/{ref}")
    assert status == code and says in body["message"]


def test_a_tx_shows_its_op_signer_block_and_body(net: ExplorerNet) -> None:
    status, tx = get(net, f"/api/txs/{net.register_tx_id}", "/api/txs/{id}")
    assert status == 200
    assert (tx["op"], tx["subject"], tx["signer"]) == ("register", PRODUCT, net.root_bid)
    assert tx["body"]["identifier"] == PRODUCT
    assert {v["type"] for v in tx["body"]["values"]} == {"URL", "EMAIL"}
    assert get(net, "/api/txs/" + "00" * 32, "/api/txs/{id}")[0] == 404
    status, body = get(net, "/api/txs/nothex", "/api/txs/{id}")
    assert status == 400 and "tx id" in body["message"]


# ---- names ----


def test_a_prefix_shows_owner_registrars_children_and_pages_its_identifiers(
    net: ExplorerNet,
) -> None:
    status, page = get(net, f"/api/prefixes/{PREFIX}?limit=2", "/api/prefixes/{prefix}")
    assert status == 200
    assert page["owner"] == net.root_bid
    assert page["registrars"] == [net.alice_bid]
    assert page["children"] == [CHILD_PREFIX]
    seen = [r["identifier"] for r in page["identifiers"]]
    while page["next_after"]:
        after = quote(page["next_after"], safe="")
        path = f"/api/prefixes/{PREFIX}?limit=2&after={after}"
        _, page = get(net, path, "/api/prefixes/{prefix}")
        seen += [r["identifier"] for r in page["identifiers"]]
    assert sorted(seen) == sorted(ALL_UNDER_PREFIX) and len(seen) == len(ALL_UNDER_PREFIX)


def test_an_absent_or_malformed_prefix_is_explained(net: ExplorerNet) -> None:
    status, body = get(net, "/api/prefixes/77.1", "/api/prefixes/{prefix}")
    assert status == 404 and "77.1" in body["message"]
    status, body = get(net, "/api/prefixes/a%20b", "/api/prefixes/{prefix}")
    assert status == 400 and body["message"]


def test_an_account_shows_what_it_owns_page_by_page(net: ExplorerNet) -> None:
    _, alice = get(net, f"/api/accounts/{net.alice_bid}", "/api/accounts/{bid}")
    assert alice["identifiers"] == [OWNED_BY_ALICE] and alice["prefixes"] == []
    owned: list[str] = []
    query = "limit=2"
    while True:
        _, root = get(net, f"/api/accounts/{net.root_bid}?{query}", "/api/accounts/{bid}")
        owned += root["identifiers"]
        if not root["next_identifiers_after"]:
            break
        query = "limit=2&identifiers_after=" + quote(root["next_identifiers_after"], safe="")
    assert sorted(owned) == sorted(ALL_UNDER_PREFIX - {OWNED_BY_ALICE})
    _, root = get(net, f"/api/accounts/{net.root_bid}?limit=1", "/api/accounts/{bid}")
    assert root["prefixes"] == [PREFIX] and root["next_prefixes_after"]
    status, body = get(net, "/api/accounts/did:bid:nonsense", "/api/accounts/{bid}")
    assert status == 400 and "BID" in body["message"]


def test_history_shows_owner_status_and_changes_latest_first(net: ExplorerNet) -> None:
    status, revoked = get(net, f"/api/history/{REVOKED}", "/api/history/{identifier}")
    assert status == 200
    assert revoked["status"] == "REVOKED" and revoked["revoke_reason"] == "recalled batch"
    assert [e["op"] for e in revoked["entries"]] == ["revoke", "register"]
    assert revoked["entries"][0]["height"] > revoked["entries"][1]["height"]
    _, pump = get(net, f"/api/history/{OWNED_BY_ALICE}", "/api/history/{identifier}")
    assert pump["owner"] == net.alice_bid and pump["status"] == "ACTIVE"
    status, body = get(net, f"/api/history/{PREFIX}/nobody", "/api/history/{identifier}")
    assert status == 404 and "not registered" in body["message"]
    status, body = get(net, f"/api/history/{PREFIX}/a%0Ab", "/api/history/{identifier}")
    assert status == 400 and body["message"]


# ---- search ----


def search(net: ExplorerNet, text: str) -> tuple[int, Any]:
    return get(net, "/api/search?q=" + quote(text, safe=""), "/api/search")


def test_search_finds_each_kind_of_object(net: ExplorerNet) -> None:
    _, tx = get(net, f"/api/txs/{net.register_tx_id}", "/api/txs/{id}")
    cases = {
        PRODUCT.lower(): ("identifier", PRODUCT),
        GS1_PRODUCT: ("identifier", GS1_PRODUCT),
        PREFIX: ("prefix", PREFIX),
        net.alice_bid: ("account", net.alice_bid),
        "2": ("block", "2"),
        tx["block_hash"]: ("block", str(tx["height"])),
        net.register_tx_id: ("tx", net.register_tx_id),
    }
    for text, (kind, target) in cases.items():
        status, found = search(net, f"  {text} ")
        assert status == 200, found
        assert (found["kind"], found["target"]) == (kind, target), text


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("", 400, "q is required"),
        (f"{PREFIX}/no-such-thing", 404, "not registered"),
        ("99999999999", 404, "no block at that height"),
        ("cd" * 32, 404, "no block and no committed tx"),
        ("did:bid:xyz", 400, "BID"),
        ("9" * 5000, 400, "at most 1024"),
        ("9" * 1000, 404, "nothing matches"),
        ("https://id.example.com/01/09506000134353", 400, "check digit"),
    ],
)
def test_search_says_why_nothing_matched(net: ExplorerNet, text: str, code: int, says: str) -> None:
    status, body = search(net, text)
    assert status == code and says in body["message"], body


def test_search_resolves_digital_links_and_gtins_as_the_resolver_does(net: ExplorerNet) -> None:
    cases = {
        f"https://id.example.com/01/{GTIN}/21/SN-1": GS1_PRODUCT,
        f"https://id.example.com/gtin/{GTIN}/ser/SN-1?linkType=all": GS1_PRODUCT,
        f"https://id.example.com/01/{GTIN}/21/SN-404": GS1_GTIN_RECORD,  # falls back
        GTIN: GS1_GTIN_RECORD,
        GTIN[1:]: GS1_GTIN_RECORD,  # its GTIN-13 form
    }
    for text, identifier in cases.items():
        status, found = search(net, text)
        assert status == 200, found
        assert (found["kind"], found["target"]) == ("identifier", identifier), text
    status, body = search(net, "https://id.example.com/01/00000000000017")
    assert status == 404 and "no record for GTIN" in body["message"]


# ---- the live feed ----


def open_stream(net: ExplorerNet) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    address = urlsplit(net.base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
    return connection, connection.getresponse()


def next_event(stream: http.client.HTTPResponse) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        line = stream.readline().decode().rstrip("\n")
        if line == "" and fields:
            return fields
        if line and not line.startswith(":"):
            name, _, data = line.partition(": ")
            fields[name] = data


def test_a_block_event_arrives_after_a_commit(net: ExplorerNet) -> None:
    connection, stream = open_stream(net)
    try:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        hello = next_event(stream)
        assert hello["event"] == "hello"
        start = json.loads(hello["data"])["height"]
        cluster = net.cluster
        txs = TxBuilder(cluster.genesis_chain_id(), cluster.root_key(), secrets.SystemRandom())
        tx = txs.register(f"{PREFIX}/Live-1", [value(1, "URL", "https://example.com/live")],
                          now_ms=now_ms())  # fmt: skip
        committed = cluster.submit("node1", tx)
        assert committed.committed
        while True:
            event = next_event(stream)
            assert event["event"] == "block"
            block = json.loads(event["data"])
            assert block["height"] == int(event["id"]) > start
            if block["height"] >= committed.height:
                break
        _, stored = get(net, f"/api/blocks/{block['height']}", "/api/blocks/{ref}")
        assert block["hash"] == stored["hash"]
        assert block["tx_count"] == len(stored["txs"])
    finally:
        connection.close()


def open_event_streams(net: ExplorerNet) -> int:
    return int(get(net, "/api/status", "/api/status")[1]["event_streams"]["open"])


def test_event_streams_beyond_the_limit_are_refused_naming_it(net: ExplorerNet) -> None:
    until(lambda: open_event_streams(net) == 0, what="earlier tests' streams to end")
    opened = []
    try:
        for _ in range(MAX_SSE_SUBSCRIBERS):
            connection, stream = open_stream(net)
            opened.append(connection)
            assert stream.status == 200
        status, _, body = http_get(net.base, "/api/events")
        assert status == 503 and "MAX_SSE_SUBSCRIBERS" in body["message"]
    finally:
        for connection in opened:
            connection.close()
    # a reader that leaves gives its slot back, without waiting for a block to send
    until(lambda: open_event_streams(net) == 0, what="the closed streams to end")


# ---- the page ----


def without_js_comments(text: str) -> str:
    """JavaScript source without its // and /* */ comments (strings kept whole).

    The vendored noble files (vendor/, unmodified npm packages) cite papers and RFCs by URL in
    their comments; a comment loads nothing, so the scan reads their code only. Our own files
    are scanned whole. The vendored code has no regular expression literal holding a quote or
    a comment's opening, which this reader would misread (a stale or different file fails
    the byte-for-byte test of tests/test_explorer_vendor.py first)."""
    code, at, quote = [], 0, ""
    while at < len(text):
        ch, pair = text[at], text[at : at + 2]
        if quote:
            code.append(text[at : at + 2] if ch == "\\" else ch)
            at += 2 if ch == "\\" else 1
            quote = "" if ch == quote else quote
        elif pair == "//":
            end = text.find("\n", at)
            at = len(text) if end < 0 else end
        elif pair == "/*":
            end = text.find("*/", at + 2)
            at = len(text) if end < 0 else end + 2
        else:
            quote = ch if ch in "'\"`" else ""
            code.append(ch)
            at += 1
    return "".join(code)


def scanned(name: str, text: str) -> str:
    return (
        without_js_comments(text) if name.startswith("vendor/") and name.endswith(".js") else text
    )


def test_the_comment_reader_keeps_code_and_strings_and_drops_comments() -> None:
    source = 'a = "//x"; // https://one.example\n/* https://two.example */ b = `http://c.example`'
    kept = without_js_comments(source)
    assert kept == 'a = "//x"; \n b = `http://c.example`'
    assert EXTERNAL_URL.search(scanned("vendor/x.js", source))


def test_the_page_and_its_files_are_served_and_name_no_other_host(net: ExplorerNet) -> None:
    address = urlsplit(net.base)
    for path, name in [("/", "index.html")] + [(f"/explorer/{n}", n) for n in STATIC_FILES]:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        served = response.read().decode()
        connection.close()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith(STATIC_FILES[name])
        assert served == (STATIC_DIR / name).read_text()
        assert not EXTERNAL_URL.search(scanned(name, served)), f"{name} names another host"
    status, _, body = http_get(net.base, "/explorer/secret.txt")
    assert status == 404 and body["message"]


def test_every_static_file_of_the_package_is_listed_and_names_no_other_host() -> None:
    folder = Path(STATIC_DIR)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    served = on_disk - vendor_records()  # the vendored LICENSEs and README are not served
    assert served == set(STATIC_FILES) == set(STATIC_FILE_NAMES)
    assert {n for n in served if n.startswith("vendor/")} == set(vendor_files())
    for name in served:
        text = (STATIC_DIR / name).read_text()
        assert not EXTERNAL_URL.search(scanned(name, text)), f"{name} names another host"


def test_every_explorer_path_in_openapi_answers_errors_as_json_messages() -> None:
    paths = openapi_paths()
    assert {"/api/status", "/api/blocks", "/api/blocks/{ref}", "/api/txs/{id}",
            "/api/prefixes/{prefix}", "/api/accounts/{bid}", "/api/history/{identifier}",
            "/api/search", "/api/genesis", "/api/events", "/", "/explorer/{name}"} == set(
        paths)  # fmt: skip
    for path, entry in paths.items():
        responses = entry["get"]["responses"]
        assert "200" in responses and "503" in responses, path
        for status, response in responses.items():
            if status != "200":
                assert response["content"]["application/json"]["schema"]["required"] == [
                    "message"
                ], (path, status)
