"""What a node tells Prometheus (issue 11 item 5, DESIGN §11): `GET /metrics` on the gateway.

One `NodeMetrics` per node, each with its own CollectorRegistry (never prometheus-client's
global one: tests run several nodes in one process), holding the process metrics too.

State the node already keeps (height, round and step, mempool size, peers, sync lag) is
read when Prometheus scrapes, by `StateCollector`, so no hot path pays for it. What happens
(commits, API calls, bounds hit) is counted as it happens: one counter increment, or one
histogram observation, per event. Every metric is named in docs/operating.md.

Labels stay bounded: gRPC methods are the services' own, HTTP requests are labelled by the
route pattern they matched (not the path asked for), `limit` by a name in
identifiers/limits.py or config.toml.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sparkchain.node.gc_pauses import GcPauses
from sparkchain.node.grpc_errors import WrappingInterceptor
from sparkchain.node.openapi import BUSY_RESPONSE

# a commit takes from tens of milliseconds (a block interval) to seconds (lost rounds)
COMMIT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# an API call: a resolve is well under a millisecond, a Submit waiting for commit seconds
API_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)
UNMATCHED_ROUTE = "unmatched"  # an HTTP request no route takes (its 404, a 405)
# a client may send any token as its method: others are labelled OTHER, so labels stay bounded
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


@dataclass(frozen=True, slots=True)
class NodeState:
    """How the node's state is read at scrape time; each returns what it holds now."""

    height: Callable[[], int]
    # (round, step) of the height consensus works on; None off validators
    consensus: Callable[[], tuple[int, int] | None]
    mempool: Callable[[], tuple[int, int]]  # (txs, bytes)
    peers: Callable[[], Iterable[tuple[bool, bool]]]  # (connected, observer) per known peer
    best_peer_height: Callable[[], int]


class StateCollector(Collector):
    def __init__(self, state: NodeState) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self._state
        height = state.height()
        yield GaugeMetricFamily("spark_height", "Height of the last committed block", height)
        position = state.consensus()
        if position is not None:
            round_, step = position
            yield GaugeMetricFamily(
                "spark_consensus_round", "Round of the height consensus works on", round_
            )
            yield GaugeMetricFamily(
                "spark_consensus_step",
                "Step of that round: 0 propose, 1 prevote, 2 precommit",
                step,
            )
        txs, size = state.mempool()
        yield GaugeMetricFamily("spark_mempool_txs", "Txs held in the mempool", txs)
        yield GaugeMetricFamily("spark_mempool_bytes", "Bytes of the txs in the mempool", size)
        peers = GaugeMetricFamily(
            "spark_peers_connected", "Peer links up, by kind of peer", labels=["kind"]
        )
        counts = {"validator": 0, "observer": 0}
        for connected, observer in state.peers():
            if connected:
                counts["observer" if observer else "validator"] += 1
        for kind, count in counts.items():
            peers.add_metric([kind], count)
        yield peers
        yield GaugeMetricFamily(
            "spark_sync_lag_blocks",
            "Best height a connected peer announced minus our own height (0 when ahead)",
            max(0, state.best_peer_height() - height),
        )


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        registry = self.registry
        self.gc_pauses = GcPauses(registry)
        self.commit_latency = Histogram(
            "spark_commit_latency_seconds",
            "From the start of a height on this validator to its block's commit",
            buckets=COMMIT_BUCKETS_S,
            registry=registry,
        )
        self.blocks_committed = Counter(
            "spark_blocks_committed",
            "Blocks committed (consensus or block sync)",
            registry=registry,
        )
        self.txs_committed = Counter(
            "spark_txs_committed", "Txs in the blocks committed", registry=registry
        )
        self.api_requests = Counter(
            "spark_api_requests",
            "API calls answered, by API (grpc, http), method and status",
            ["api", "method", "status"],
            registry=registry,
        )
        self.api_latency = Histogram(
            "spark_api_request_duration_seconds",
            "Time to answer an API call (a stream: until it ends), by API and method",
            ["api", "method"],
            buckets=API_BUCKETS_S,
            registry=registry,
        )
        # each label set's counter and histogram, looked up once (labels() takes a lock)
        self._api_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.limit_hits = Counter(
            "spark_limit_hits",
            "Requests, streams or links refused or cut because a bound was reached",
            ["limit"],
            registry=registry,
        )

    def watch(self, state: NodeState) -> None:
        """Read `state` at every scrape."""
        self.registry.register(StateCollector(state))

    def committed(self, txs: int) -> None:
        self.blocks_committed.inc()
        if txs:
            self.txs_committed.inc(txs)

    def limit_hit(self, limit: str) -> None:
        self.limit_hits.labels(limit).inc()

    def api_call(self, api: str, method: str, status: str, seconds: float) -> None:
        children = self._api_children.get((api, method, status))
        if children is None:  # label sets are bounded (methods, route patterns, statuses)
            children = (
                self.api_requests.labels(api, method, status),
                self.api_latency.labels(api, method),
            )
            self._api_children[api, method, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # ---- the gateway's part ----

    async def serve(self, request: web.Request) -> web.Response:
        """GET /metrics: the Prometheus text format."""
        response = web.Response(body=self.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    def http_call(self, request: web.Request, status: int, seconds: float) -> None:
        """Count one answered HTTP request, labelled by its route's pattern (bounded)."""
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else UNMATCHED_ROUTE
        verb = request.method if request.method in HTTP_METHODS else "OTHER"
        self.api_call("http", f"{verb} {pattern}", str(status), seconds)

    def grpc_interceptor(self) -> MetricsInterceptor:
        return MetricsInterceptor(self)


class MetricsInterceptor(WrappingInterceptor):
    """Counts and times every call of a grpc.aio server, by full method name and the
    status it ended with."""

    def __init__(self, metrics: NodeMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def wrap(
        self, method_handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler: Any = method_handler  # grpc builds them as named tuples (grpc._utilities)
        kind = (
            ("stream" if handler.request_streaming else "unary")
            + "_"
            + ("stream" if handler.response_streaming else "unary")
        )
        behaviour = getattr(handler, kind)
        if behaviour is None:
            return method_handler
        record = self._metrics.api_call

        def done(context: Any, started: float, ended: str) -> None:
            record("grpc", method, _status_of(context, ended), time.perf_counter() - started)

        if handler.response_streaming:

            async def timed_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                started, ended = time.perf_counter(), RAISED
                try:
                    async for response in behaviour(request, context):
                        yield response
                    ended = "OK"
                except asyncio.CancelledError:
                    ended = "CANCELLED"
                    raise
                finally:
                    done(context, started, ended)

            timed: Callable[..., Any] = timed_stream
        else:

            async def timed_call(request: Any, context: Any) -> Any:
                started, ended = time.perf_counter(), RAISED
                try:
                    answer = await behaviour(request, context)
                    ended = "OK"
                    return answer
                except asyncio.CancelledError:
                    ended = "CANCELLED"
                    raise
                finally:
                    done(context, started, ended)

            timed = timed_call
        timed_handler: grpc.RpcMethodHandler[Any, Any] = handler._replace(**{kind: timed})
        return timed_handler


RAISED = "UNKNOWN"  # a handler that raised (not an abort) ends so: grpc's own answer


def _status_of(context: Any, ended: str) -> str:
    """The status a call ended with: CANCELLED when the client went away, else what the
    handler set or aborted with, else `ended` (OK when it returned, UNKNOWN if it raised)."""
    if ended == "CANCELLED":
        return ended
    try:
        code = context.code()
    except Exception:  # a context that cannot say: what we know
        code = None
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int) and code:  # grpc.aio may keep the raw number
        return next((s.name for s in grpc.StatusCode if s.value[0] == code), str(code))
    return ended


def openapi_paths() -> dict[str, Any]:
    """This module's route, for node/openapi.py."""
    return {
        "/metrics": {
            "get": {
                "summary": "The node's metrics in the Prometheus text format",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Every spark_* metric (docs/operating.md), process metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "503": BUSY_RESPONSE,
                },
            }
        }
    }
