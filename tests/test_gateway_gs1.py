"""The GS1 Digital Link resolver of real node processes (issue 11 item 3), over real HTTP.

A two-validator testnet started with `spark testnet`, its nodes configured with
`[gs1] prefixes = ["88.608", "88.609"]`; records are registered through the public gRPC API
and through `spark register` (which stores a Digital Link in its canonical form), and read
back through node2's gateway without following redirects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import re
import secrets
import urllib.parse
from collections.abc import Collection, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sparkchain.identifiers.gs1_keys import PRIMARY_KEYS
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node.config import Gs1Config, load_config, write_config
from sparkchain.node.gateway_gs1 import Gs1Resolver, openapi_paths
from sparkchain.node.home import NodeHome
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.proto import types_pb2 as pb
from tests.helpers.cluster import Cluster, http_base

pytestmark = pytest.mark.timeout(180)

GTIN14 = "09506000134352"
GTIN = f"https://example.com/gtin/{GTIN14}"
PIP = "https://example.com/pip"
LOT = "https://example.com/lot-1"
SERIAL = "https://example.com/serial-s/1"
SSCC = "106141411234567897"
GLN = "4006381333931"
LINKSET = "application/linkset+json"


@dataclasses.dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(base: str, path: str, accept: str = "") -> Answer:
    """GET without following redirects: the 307 is what is tested."""
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Accept": accept} if accept else {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def redirect(base: str, path: str) -> str:
    answer = fetch(base, path)
    assert answer.status == 307, answer.body
    return str(answer.headers["Location"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("gateway-gs1"), validators=2).init()
    for info in built.nodes.values():
        home = NodeHome(info.home)
        config = home.config()
        assert config.gs1.prefixes == ("88.608",)  # what `spark testnet init` writes
        # an operator lists a second prefix to search
        searched = Gs1Config(prefixes=("88.608", "88.609"))
        write_config(home.config_path, dataclasses.replace(config, gs1=searched))
        assert load_config(home.config_path).gs1 == searched
    try:
        built.start()
        api = built.nodes["node1"].api
        signer = ("--key-file", built.root_key_file, "--node", api)
        for prefix in ("88", "88.608", "88.609"):
            built.spark_ok("prefix", "create", prefix, *signer)
        txs = TxBuilder(built.genesis_chain_id(), built.root_key(), secrets.SystemRandom())
        records = {
            f"88.608/01/{GTIN14}": [
                value(1, "URL", GTIN),
                value(2, "gs1:pip", PIP),
                value(3, "EMAIL", "ops@example.com"),
                value(4, "https://gs1.org/voc/certificationInfo", "https://example.com/cert"),
            ],
            f"88.608/01/{GTIN14}/10/LOT-1": [value(1, "URL", LOT)],
            f"88.608/00/{SSCC}": [value(1, "URL", "https://example.com/sscc-first")],
            f"88.609/00/{SSCC}": [value(1, "URL", "https://example.com/sscc-second")],
            f"88.609/01/0{GLN}": [value(1, "URL", "https://example.com/second-prefix")],
            f"88.608/414/{GLN}": [value(1, "URL", "https://example.com/gln")],
            "88.608/8004/0614141ASSET-7": [value(1, "URL", "https://example.com/giai")],
            "88.608/01/00000000000017": [value(1, "EMAIL", "no-link@example.com")],
            "88.608/8004/0614141RECALLED": [value(1, "URL", "https://example.com/recalled")],
        }
        for identifier, values in records.items():
            tx = txs.register(identifier, values, now_ms=now_ms())
            assert built.submit("node1", tx).committed
        revoke = txs.revoke("88.608/8004/0614141RECALLED", "recalled", now_ms=now_ms())
        assert built.submit("node1", revoke).committed
        # a user registers the Digital Link printed on a label, not its canonical form
        registered = built.spark(
            "register",
            f"88.608/https://id.gs1.org/gtin/{GTIN14[1:]}/lot/LOT-1/ser/S%2F1?17=261231",
            "--url",
            SERIAL,
            *signer,
        )
        assert registered.code == 0, registered.err
        assert f"88.608/01/{GTIN14}/10/LOT-1/21/S%2F1" in registered.err
        built.wait_in_step(["node1", "node2"])
        yield built
    finally:
        built.stop_all()


@pytest.fixture(scope="module")
def base(cluster: Cluster) -> str:
    return http_base(cluster, "node2")


# ---- redirects and their fallback ----


def test_the_most_specific_record_answers_with_a_307_to_its_url(base: str) -> None:
    answer = fetch(base, f"/01/{GTIN14}/10/LOT-1/21/S%2F1")
    assert answer.status == 307
    assert answer.headers["Location"] == SERIAL
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_an_unregistered_serial_falls_back_to_its_lot_then_to_the_gtin(base: str) -> None:
    assert redirect(base, f"/01/{GTIN14}/10/LOT-1/21/OTHER") == LOT
    assert redirect(base, f"/01/{GTIN14}/21/S%2F1") == GTIN  # no lot: not the serial's record
    assert redirect(base, f"/01/{GTIN14}/22/V2/10/LOT-2") == GTIN


def test_short_names_and_a_gtin_13_resolve_to_the_same_records(base: str) -> None:
    assert redirect(base, f"/gtin/{GTIN14}/lot/LOT-1/ser/S%2F1") == SERIAL
    assert redirect(base, f"/01/{GTIN14[1:]}") == redirect(base, f"/01/{GTIN14}") == GTIN
    assert redirect(base, f"/01/{GTIN14[1:]}/10/LOT-1") == LOT


def test_other_gs1_keys_resolve_sscc_gln_with_its_extension_and_giai(base: str) -> None:
    assert redirect(base, f"/00/{SSCC}") == "https://example.com/sscc-first"
    assert redirect(base, f"/sscc/{SSCC}") == "https://example.com/sscc-first"
    assert redirect(base, f"/414/{GLN}/254/DOCK-1") == "https://example.com/gln"
    assert redirect(base, "/giai/0614141ASSET-7") == "https://example.com/giai"


def test_a_revoked_record_still_redirects_and_says_it_is_revoked(base: str) -> None:
    answer = fetch(base, "/8004/0614141RECALLED")
    assert answer.status == 307
    assert answer.headers["Location"] == "https://example.com/recalled"
    assert answer.headers["Spark-Record-Status"] == "REVOKED"
    assert "Spark-Record-Status" not in fetch(base, "/giai/0614141ASSET-7").headers


def test_a_prefix_listed_second_is_searched_when_the_first_has_no_record(base: str) -> None:
    assert redirect(base, f"/01/{GLN}") == "https://example.com/second-prefix"


# ---- link types ----


def test_link_type_picks_the_value_of_that_type_in_either_form(base: str) -> None:
    assert redirect(base, f"/01/{GTIN14}?linkType=gs1:pip") == PIP
    full = urllib.parse.quote("https://gs1.org/voc/pip", safe="")
    assert redirect(base, f"/01/{GTIN14}?linkType={full}") == PIP
    assert redirect(base, f"/01/{GTIN14}?linkType=gs1:certificationInfo") == (
        "https://example.com/cert"
    )
    assert redirect(base, f"/01/{GTIN14}?linkType=gs1:defaultLink") == GTIN


def test_a_link_type_the_record_lacks_is_404_naming_it(base: str) -> None:
    answer = fetch(base, f"/01/{GTIN14}/10/LOT-1?linkType=gs1:epil")
    assert answer.status == 404
    assert "gs1:epil" in answer.json()["message"]
    assert 'rel="linkset"' in answer.headers["Link"]
    # a value that is not an http(s) URL is never a redirect target
    answer = fetch(base, "/01/00000000000017?linkType=EMAIL")
    assert answer.status == 404 and "EMAIL" in answer.json()["message"]


# ---- linksets ----


def test_link_type_all_answers_the_record_as_an_rfc_9264_linkset(base: str) -> None:
    answer = fetch(base, f"/01/{GTIN14[1:]}/21/NOT-REGISTERED?linkType=all")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith(LINKSET)
    (context,) = answer.json()["linkset"]
    assert context["anchor"] == f"{base}/01/{GTIN14}"  # the level that answered
    assert context["https://gs1.org/voc/defaultLink"] == [{"href": GTIN}]
    assert context["https://gs1.org/voc/pip"] == [{"href": PIP}]
    assert context["https://gs1.org/voc/certificationInfo"] == [
        {"href": "https://example.com/cert"}
    ]
    assert len(context) == 4  # the EMAIL value is not a link


def test_accept_linkset_json_answers_the_same_linkset(base: str) -> None:
    asked = fetch(base, f"/01/{GTIN14}", accept=LINKSET)
    assert asked.status == 200
    assert asked.json() == fetch(base, f"/01/{GTIN14}?linkType=all").json()


def test_every_answer_names_its_linkset_in_a_link_header_that_resolves(base: str) -> None:
    answer = fetch(base, f"/gtin/{GTIN14[1:]}/lot/LOT-1/ser/S%2F1")
    link = answer.headers["Link"]
    expected = f"{base}/01/{GTIN14}/10/LOT-1/21/S%2F1?linkType=all"
    assert link == f'<{expected}>; rel="linkset"; type="{LINKSET}"'
    linkset = fetch(base, expected.removeprefix(base))
    assert linkset.status == 200
    assert linkset.json()["linkset"][0]["https://gs1.org/voc/defaultLink"] == [{"href": SERIAL}]
    assert linkset.headers["Link"] == link


# ---- refusals ----


def test_a_bad_check_digit_is_400_saying_which_digit_is_expected(base: str) -> None:
    answer = fetch(base, "/01/09506000134353/21/S1")
    assert answer.status == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "expected 2" in answer.json()["message"]
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    answer = fetch(base, f"/00/{SSCC[:-1]}8")
    assert answer.status == 400 and "expected 7" in answer.json()["message"]


def test_a_malformed_path_is_400_saying_what_is_wrong(base: str) -> None:
    answer = fetch(base, f"/01/{GTIN14}/21/S1/10/L1")
    assert answer.status == 400 and "comes after AI 21" in answer.json()["message"]
    answer = fetch(base, f"/414/{GLN}/21/S1")
    assert answer.status == 400 and "not a key qualifier of GLN" in answer.json()["message"]


def test_no_record_at_any_level_is_404_with_a_message(base: str) -> None:
    answer = fetch(base, "/00/000000000000000000")
    assert answer.status == 404
    message = answer.json()["message"]
    assert "no record" in message and "88.609/00/000000000000000000" in message
    assert answer.headers["Link"].startswith(f"<{base}/00/000000000000000000?linkType=all>")


# ---- without a node: the resolver's configuration and its OpenAPI paths ----


class NoRecords:
    height = 0

    def resolve(
        self, identifier: str, types: Collection[str] = (), indexes: Collection[int] = ()
    ) -> pb.Record:
        raise AssertionError(f"nothing is looked up without prefixes, not {identifier}")


def test_with_no_prefixes_configured_the_resolver_answers_404_saying_so() -> None:
    async def ask() -> tuple[int, dict[str, str]]:
        app = web.Application()
        Gs1Resolver(NoRecords(), prefixes=()).add_routes(app)
        async with TestClient(TestServer(app)) as client:
            response = await client.get(f"/01/{GTIN14}", allow_redirects=False)
            return response.status, await response.json()

    status, body = asyncio.run(ask())
    assert status == 404
    assert "no GS1 prefixes are configured" in body["message"]
    assert "[gs1] prefixes" in body["message"]


def test_openapi_paths_describe_every_key_and_status_with_matching_parameters() -> None:
    paths = openapi_paths()
    short_names = {key.spec.short_name for key in PRIMARY_KEYS.values()} - {""}
    assert {path.split("/")[1] for path in paths} == set(PRIMARY_KEYS) | short_names
    assert {"/01/{tail}", "/gtin/{tail}", "/414/{tail}", "/00/{tail}"} <= set(paths)
    assert "254 (" in paths["/414/{tail}"]["get"]["parameters"][0]["description"]
    for template, item in paths.items():
        operation = item["get"]
        in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", template)), template
        assert {"200", "307", "400", "404", "500"} <= set(operation["responses"])
    assert json.loads(json.dumps(paths)) == paths  # plain JSON
