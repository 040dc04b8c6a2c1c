"""`GET /metrics` of real node processes (issue 11 item 5): the Prometheus text format that
prometheus-client's own parser reads, whose counters move when txs commit and when the
gRPC API and the HTTP gateway answer, and whose bounded labels do not grow with the paths
asked for. A two-validator testnet started with `spark testnet`."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparkchain.identifiers.limits import MAX_WATCH_STREAMS_PER_CLIENT
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.proto import api_pb2
from tests.helpers.cluster import Cluster, http_base, until

pytestmark = pytest.mark.timeout(180)

WATCH = "/spark.v1.Identifiers/Watch"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> tuple[str, Samples]:
    """(the Content-Type, every sample by name and labels) of GET base/metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode("utf-8")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return content_type, samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def http_get_status(url: str | urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("metrics"), validators=2).init()
    try:
        built.start()
        api = built.nodes["node1"].api
        built.spark_ok("prefix", "create", "88", "--key-file", built.root_key_file, "--node", api)
        built.wait_in_step(["node1", "node2"])
        yield built
    finally:
        built.stop_all()


def test_metrics_parse_and_move_when_txs_commit_and_apis_answer(cluster: Cluster) -> None:
    base = http_base(cluster, "node1")
    content_type, before = scrape(base)
    assert content_type.startswith("text/plain")
    submit = "/spark.v1.Identifiers/Submit"
    resolve_route = "GET /api/handles/{handle}"
    txs = TxBuilder(cluster.genesis_chain_id(), cluster.root_key(), secrets.SystemRandom())
    names = [f"88/M-{i}" for i in range(3)]
    for name in names:
        tx = txs.register(name, [value(1, "URL", f"https://example.com/{name}")], now_ms=now_ms())
        assert cluster.submit("node1", tx).committed
    for name in names[:2]:
        assert http_get_status(f"{base}/api/handles/{name}") == 200
    assert http_get_status(f"{base}/api/handles/88/absent") == 404
    _, after = scrape(base)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("spark_txs_committed_total") >= len(names)
    assert moved("spark_blocks_committed_total") >= 1
    assert moved("spark_commit_latency_seconds_count") >= 1  # node1 is a validator
    assert moved("spark_api_requests_total", api="grpc", method=submit, status="OK") == len(names)
    assert moved("spark_api_request_duration_seconds_count", api="grpc", method=submit) == len(
        names
    )
    assert moved("spark_api_requests_total", api="http", method=resolve_route, status="200") == 2
    assert moved("spark_api_requests_total", api="http", method=resolve_route, status="404") == 1
    assert sample(after, "spark_height") >= cluster.height("node1") - 1 > 0
    assert sample(after, "spark_peers_connected", kind="validator") == 1
    assert sample(after, "spark_sync_lag_blocks") >= 0
    assert ("spark_mempool_txs", frozenset()) in after
    assert ("spark_mempool_bytes", frozenset()) in after
    assert ("spark_consensus_round", frozenset()) in after
    assert ("process_cpu_seconds_total", frozenset()) in after  # process metrics


def test_http_labels_name_route_patterns_not_the_paths_asked_for(cluster: Cluster) -> None:
    base = http_base(cluster, "node2")
    marker = secrets.token_hex(8)
    assert http_get_status(f"{base}/api/handles/88/{marker}") == 404
    assert http_get_status(f"{base}/{marker}") == 404
    # the HTTP parser refuses unknown methods itself; a known one no route takes is OTHER
    odd = urllib.request.Request(f"{base}/healthz", method="PROPFIND")
    assert http_get_status(odd) == 405
    _, samples = scrape(base)
    labels = {value for (_name, pairs) in samples for _key, value in pairs}
    assert not any(marker in label.lower() for label in labels)
    odd_methods = [dict(pairs).get("method", "") for (_name, pairs) in samples]
    assert any(method.startswith("OTHER ") for method in odd_methods)
    assert (
        sample(
            samples, "spark_api_requests_total", api="http", method="GET unmatched", status="404"
        )
        >= 1
    )


def test_a_watch_cap_hit_is_counted(cluster: Cluster) -> None:
    base = http_base(cluster, "node2")
    hits = "spark_limit_hits_total"
    cap = "MAX_WATCH_STREAMS_PER_CLIENT"
    _, before = scrape(base)
    stub = cluster.identifiers("node2")
    held = [stub.Watch(api_pb2.WatchRequest(prefix="88"), timeout=60) for _ in range(16)]
    assert len(held) == MAX_WATCH_STREAMS_PER_CLIENT

    def refused() -> bool:
        probe = stub.Watch(api_pb2.WatchRequest(prefix="88"), timeout=2)
        try:
            next(probe)
        except grpc.RpcError as error:
            return bool(error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED)
        return False

    try:
        until(refused, 30, "a Watch stream beyond the cap refused")
    finally:
        for stream in held:
            stream.cancel()
    _, after = scrape(base)
    assert sample(after, hits, limit=cap) >= sample(before, hits, limit=cap) + 1
    refusals = sample(
        after, "spark_api_requests_total", api="grpc", method=WATCH, status="RESOURCE_EXHAUSTED"
    )
    assert refusals >= 1


def test_startup_objects_are_frozen_and_collections_are_timed(cluster: Cluster) -> None:
    """After start-up the node freezes what is alive (node/gc_pauses.py): a full collection
    then walks only what was made since; every collection's pause is observed."""
    base = http_base(cluster, "node2")
    _, samples = scrape(base)
    # a started node holds tens of thousands of objects (modules, classes, descriptors)
    assert sample(samples, "spark_gc_frozen_objects") > 10_000
    # the cluster committed blocks since start-up: young collections ran, and were timed
    young = sample(samples, "spark_gc_pause_seconds_count", generation="0")
    assert young > 0
    assert sample(samples, "spark_gc_pause_seconds_sum", generation="0") > 0
