"""The node's HTTP gateway (issue 11, DESIGN §10): Handle REST reads in the shape Handle.Net
servers speak, the GS1 Digital Link resolver (node/gateway_gs1.py), and /healthz and /readyz,
on aiohttp on the node's own event loop.

It reads the same committed state as the gRPC API, through the same ledger reads
(`Ledger.resolve`, `Ledger.list_identifiers`): a resolve is one LevelDB get and runs on
the loop, as the gRPC Resolve does; a listing walks a range, so it runs in the gateway's
own thread, which `stop()` waits for before the ledger closes.

Handle REST response codes (Handle.Net's, with the HTTP status each comes with):
  1   HTTP 200  success
  2   HTTP 500  a server error (a bug, a storage failure); HTTP 400 for a malformed query
                parameter (`index`, `page`, `pageSize`), which Handle.Net has no code for
  100 HTTP 404  the handle (or the listed prefix) does not exist
  102 HTTP 400  the handle (or prefix) is malformed
  200 HTTP 200  the handle exists, no value matches the `type`/`index` filter
Every answer but 1 and 200 carries a `"message"`.

Bounds (identifiers/limits.py): the request line (MAX_HTTP_REQUEST_LINE_BYTES, else 400
unread), page sizes (MAX_HTTP_PAGE_SIZE), the handles a listing counts
(MAX_HTTP_COUNT_RECORDS), connections served at once ([http] max_connections: beyond,
503 and the connection closed; the kernel queues at most HTTP_BACKLOG pending ones), idle
keep-alive connections (HTTP_KEEPALIVE_TIMEOUT_S).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sparkchain.consensus.certificate import quorum_size
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    DEFAULT_HTTP_PAGE_SIZE,
    HTTP_BACKLOG,
    HTTP_KEEPALIVE_TIMEOUT_S,
    MAX_HTTP_COUNT_RECORDS,
    MAX_HTTP_PAGE_SIZE,
    MAX_HTTP_REQUEST_LINE_BYTES,
    MAX_LIST_PAGE_SIZE,
)
from sparkchain.ledger.handle_view import handle_value_json
from sparkchain.ledger.templates import Rule, bound_view, template_reference, template_rule
from sparkchain.node.answer_cache import AnswerCache
from sparkchain.node.api import StatusSource
from sparkchain.node.config import HttpConfig, split_address
from sparkchain.node.gateway_explorer import Explorer
from sparkchain.node.gateway_gs1 import Gs1Resolver
from sparkchain.node.ledger import Ledger
from sparkchain.node.logs import RateLimitedLog
from sparkchain.node.metrics import NodeMetrics
from sparkchain.node.openapi import serve_openapi
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.gateway")

# Handle.Net's response codes
HS_SUCCESS = 1
HS_ERROR = 2
HS_HANDLE_NOT_FOUND = 100
HS_INVALID_HANDLE = 102
HS_VALUES_NOT_FOUND = 200

JSON_TYPE = "application/json"
# a peer this many blocks ahead still counts as caught up: it may just have committed
READY_HEIGHT_SLACK = 1


# ---------------------------------------------------------------------------- pure parts


def handle_record_json(
    requested: str, record: pb.Record, template: Rule | None = None
) -> dict[str, Any]:
    """The answer to GET /api/handles/{requested}, `record` already filtered. When its
    values name a metadata template (index 1001), "template" shows the template and the
    metadata by property name, typed as `template` (its rule, None if unreadable) says."""
    answer: dict[str, Any] = {
        "responseCode": HS_SUCCESS if record.values else HS_VALUES_NOT_FOUND,
        "handle": requested,
        "registeredAs": record.identifier,
        "values": [handle_value_json(value) for value in record.values],
    }
    if record.status == pb.REVOKED:
        answer["status"] = "REVOKED"
    reference = template_reference(record.values)
    if reference is not None:
        answer["template"] = {
            "identifier": reference,
            "properties": bound_view(record.values, template),
        }
    return answer


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str  # "" when ready


def readiness(
    *,
    height: int,
    syncing: bool,
    is_validator: bool,
    peers: Sequence[api_pb2.PeerInfo],
    validator_keys: Sequence[bytes],
) -> Readiness:
    """Ready: caught up with the peers it is connected to and, on a validator, connected
    to a quorum of validators (itself included). A node with peers configured and none
    connected cannot know it is caught up, so it is not ready."""
    connected = [peer for peer in peers if peer.connected]
    if syncing:
        return Readiness(False, "syncing: catching up with its peers")
    if is_validator:
        keys = set(validator_keys)
        linked = {peer.validator for peer in connected if peer.validator in keys}
        have, need = len(linked) + 1, quorum_size(len(keys))
        if have < need:
            return Readiness(
                False, f"connected to {have} of {len(keys)} validators, a quorum is {need}"
            )
    if peers and not connected:
        return Readiness(False, f"no peer connected (of {len(peers)} configured)")
    highest = max((peer.height for peer in connected), default=0)
    if highest > height + READY_HEIGHT_SLACK:
        return Readiness(False, f"behind its peers: height {height}, a peer has {highest}")
    return Readiness(True, "")


def _query_int(query: Any, name: str, default: int, minimum: int, maximum: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    return _whole_number(name, text, minimum, maximum)


def _whole_number(name: str, text: str, minimum: int, maximum: int) -> int:
    if not (text.isascii() and text.isdigit()) or not minimum <= int(text) <= maximum:
        raise _BadQuery(f"{name} must be a whole number from {minimum} to {maximum}, got {text!r}")
    return int(text)


class _BadQuery(Exception):
    pass


# ---------------------------------------------------------------------------- the server


class Gateway:
    """The HTTP gateway of one node; `start()` binds [http] listen, `stop()` lets it go."""

    def __init__(
        self,
        config: HttpConfig,
        config_path: Path,
        ledger: Ledger,
        status: StatusSource,
        is_validator: bool,
        metrics: NodeMetrics | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        gs1_prefixes: Sequence[str] = (),
    ) -> None:
        self.config = config
        self._metrics = metrics if metrics is not None else NodeMetrics()
        self._tls = tls
        self._gs1 = Gs1Resolver(ledger, gs1_prefixes)
        self._answers: AnswerCache[bytes] = AnswerCache()
        self._config_path = config_path
        self._ledger = ledger
        self._status = status
        self._is_validator = is_validator
        self._scans = ThreadPoolExecutor(1, thread_name_prefix="gateway-scan")
        self.explorer = Explorer(
            ledger, status, self._readiness, self._scans, self._gs1, self._metrics.limit_hit
        )
        self._runner: web.AppRunner | None = None
        # what aiohttp's request handlers log: one logger per gateway, filtered
        self._server_log = logging.getLogger(f"spark.gateway.server.{id(self)}")
        self._server_log.addFilter(BadRequestFilter(RateLimitedLog(log)))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics.serve)
        app.router.add_get("/openapi.json", serve_openapi)
        app.router.add_get("/api/handles", self._list)
        # any character, a newline too (`.` would leave it to aiohttp's plain-text 404)
        app.router.add_get(r"/api/handles/{handle:[\s\S]+}", self._resolve)
        self._gs1.add_routes(app)
        self.explorer.add_routes(app)
        return app

    async def start(self) -> None:
        """Bind [http] listen and serve; OSError when the address cannot be bound (the
        runtime says why, as for its other servers)."""
        host, port = split_address(self.config.listen)
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            keepalive_timeout=HTTP_KEEPALIVE_TIMEOUT_S,
            max_line_size=MAX_HTTP_REQUEST_LINE_BYTES,
            logger=self._server_log,
        )
        await runner.setup()
        site = web.TCPSite(runner, host or None, port, backlog=HTTP_BACKLOG, ssl_context=self._tls)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        # a listing still running reads LevelDB: the ledger closes after it
        await asyncio.get_running_loop().run_in_executor(None, self._scans.shutdown, True)

    # ---- middlewares ----

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """One layer for what every request gets (a layer per concern costs a resolve a
        sixth of its time): the connection cap, CORS on the read endpoints, the metrics."""
        started = time.perf_counter()
        response: web.StreamResponse | None = None
        status = 500
        try:
            server = self._runner.server if self._runner is not None else None
            if server is not None and len(server.connections) > self.config.max_connections:
                self._metrics.limit_hit("http.max_connections")
                cap = self.config.max_connections
                busy = {
                    "message": f"too many connections: http.max_connections = {cap} are "
                    "being served; try again later"
                }
                response = _json(busy, 503, pretty=False)
                response.force_close()
            else:
                try:
                    response = await handler(request)
                except web.HTTPException as exc:
                    if request.path.startswith("/api/"):
                        exc.headers["Access-Control-Allow-Origin"] = "*"
                    status = exc.status
                    raise
                if request.path.startswith("/api/"):
                    # the read endpoints answer pages on any origin (issue 11 item 7)
                    response.headers["Access-Control-Allow-Origin"] = "*"
            status = response.status
            return response
        finally:
            self._metrics.http_call(request, status, time.perf_counter() - started)

    # ---- health ----

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "alive"}, 200, pretty=False)

    def _readiness(self) -> Readiness:
        return readiness(
            height=self._ledger.height,
            syncing=self._status.syncing(),
            is_validator=self._is_validator,
            peers=self._status.peers(),
            validator_keys=self._ledger.genesis.validator_keys,
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        height = self._ledger.height
        state = self._readiness()
        answer: dict[str, Any] = {"ready": state.ready, "height": height}
        if not state.ready:
            answer["reason"] = state.reason
        return _json(answer, 200 if state.ready else 503, pretty=False)

    # ---- Handle REST ----

    async def _resolve(self, request: web.Request) -> web.Response:
        # an answer is a function of the request and the committed state: kept encoded per
        # height (node/answer_cache.py), keyed by the request's raw path and query
        requested = request.match_info["handle"]
        height = self._ledger.height
        key = request.raw_path
        body = self._answers.get(height, key)
        if body is not None:
            return web.Response(body=body, content_type=JSON_TYPE, charset="utf-8")
        response = await _answered(self._resolve_answer(request, requested), requested, request)
        if response.status == 200 and isinstance(response.body, bytes):  # not refusals
            self._answers.put(height, key, response.body, len(key) + len(response.body))
        return response

    async def _resolve_answer(self, request: web.Request, requested: str) -> web.Response:
        query = request.query
        indexes = [_whole_number("index", text, 0, 2**32 - 1) for text in query.getall("index", [])]
        from sparkchain.node import gateway_proof  # built on this module's answers

        if gateway_proof.proof_requested(query.get(gateway_proof.PROOF_QUERY)):
            answer, status = gateway_proof.proof_answer(
                self._ledger, requested, query.getall("type", []), indexes
            )
            return _json(answer, status, _pretty(request))
        record = self._ledger.resolve(requested, query.getall("type", []), indexes)
        answer = handle_record_json(requested, record, self._template_of(record))
        return _json(answer, 200, _pretty(request))

    def _template_of(self, record: pb.Record) -> Rule | None:
        """The rule of the template `record` names, or None (none named, or it cannot be
        read now: the record is shown all the same)."""
        reference = template_reference(record.values)
        if reference is None:
            return None
        try:
            return template_rule(self._ledger.resolve(reference))
        except SparkError:
            return None

    async def _list(self, request: web.Request) -> web.Response:
        return await _answered(self._list_answer(request), None, request)

    async def _list_answer(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        if not prefix:
            raise _BadQuery("prefix is required: GET /api/handles?prefix=P")
        page = _query_int(request.query, "page", 0, 0, MAX_HTTP_COUNT_RECORDS)
        page_size = _query_int(
            request.query, "pageSize", DEFAULT_HTTP_PAGE_SIZE, 1, MAX_HTTP_PAGE_SIZE
        )
        if (page + 1) * page_size > MAX_HTTP_COUNT_RECORDS:
            raise _BadQuery(
                f"page {page} of {page_size} lies beyond the first "
                f"{MAX_HTTP_COUNT_RECORDS} handles, the most a listing reaches"
            )
        loop = asyncio.get_running_loop()
        handles, total, complete = await loop.run_in_executor(
            self._scans, self._list_page, prefix, page * page_size, page_size
        )
        answer: dict[str, Any] = {
            "responseCode": HS_SUCCESS,
            "prefix": prefix,
            "totalCount": str(total),
            "page": page,
            "pageSize": page_size,
            "handles": handles,
        }
        if not complete:
            self._metrics.limit_hit("MAX_HTTP_COUNT_RECORDS")
            answer["message"] = f"totalCount counts the first {MAX_HTTP_COUNT_RECORDS} handles only"
        return _json(answer, 200, _pretty(request))

    def _list_page(self, prefix: str, offset: int, page_size: int) -> tuple[list[str], int, bool]:
        """(the handles from `offset`, at most `page_size`; how many there are, counted up
        to MAX_HTTP_COUNT_RECORDS; whether that count is complete). In the scan thread."""
        handles: list[str] = []
        total, token = 0, ""
        while True:
            records, token = self._ledger.list_identifiers(
                prefix, page_size=MAX_LIST_PAGE_SIZE, page_token=token
            )
            for record in records:
                if offset <= total < offset + page_size:
                    handles.append(record.identifier)
                total += 1
            if not token:
                return handles, total, True
            if total >= MAX_HTTP_COUNT_RECORDS:
                return handles, total, False


class BadRequestFilter(logging.Filter):
    """aiohttp logs each request it cannot parse (an overlong line, bad framing) at ERROR
    with a traceback. That is input an outsider controls: one line per interval, without
    the traceback, through RateLimitedLog."""

    def __init__(self, rate_limited: RateLimitedLog) -> None:
        super().__init__()
        self._log = rate_limited

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        problem = str(error) if error is not None else record.getMessage()
        fields: dict[str, object] = {"error": " ".join(problem.split())[:200]}
        self._log.log(logging.DEBUG, "http_bad_request", "http_bad_request", fields)
        return False


async def _answered(
    read: Awaitable[web.Response], handle: str | None, request: web.Request
) -> web.Response:
    """What `read` answers, or the Handle REST error for what it raised."""
    pretty = _pretty(request)
    try:
        return await read
    except _BadQuery as bad:
        return _error(HS_ERROR, 400, str(bad), handle, pretty)
    except SparkError as error:
        return _spark_error(error, handle, pretty)
    except Exception:
        log.exception("http_read_failed", extra={"path": request.path[:200]})
        return _error(HS_ERROR, 500, "server error", handle, pretty)


def _pretty(request: web.Request) -> bool:
    return request.query.get("pretty", "false").lower() not in ("false", "0")


def _json(answer: dict[str, Any], status: int, pretty: bool) -> web.Response:
    text = json.dumps(answer, indent=2 if pretty else None, ensure_ascii=False)
    return web.Response(text=text, status=status, content_type=JSON_TYPE)


def _error(code: int, status: int, message: str, handle: str | None, pretty: bool) -> web.Response:
    answer: dict[str, Any] = {"responseCode": code}
    if handle is not None:
        answer["handle"] = handle
    answer["message"] = message
    return _json(answer, status, pretty)


def _spark_error(error: SparkError, handle: str | None, pretty: bool) -> web.Response:
    if error.code == ErrorCode.NOT_FOUND:
        return _error(HS_HANDLE_NOT_FOUND, 404, error.message, handle, pretty)
    if error.code in (ErrorCode.INVALID_IDENTIFIER, ErrorCode.INVALID_PREFIX):
        return _error(HS_INVALID_HANDLE, 400, error.message, handle, pretty)
    if error.code == ErrorCode.INVALID_ARGUMENT:
        return _error(HS_ERROR, 400, error.message, handle, pretty)
    if error.code == ErrorCode.UNAVAILABLE:  # not now, or not by this node: no server error
        return _error(HS_ERROR, 503, error.message, handle, pretty)
    log.error("http_read_failed", extra={"code": str(error.code), "error": error.message})
    return _error(HS_ERROR, 500, error.message, handle, pretty)
