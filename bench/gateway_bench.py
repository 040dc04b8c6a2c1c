"""The HTTP gateway (issue 11) under 64 requests in flight, each figure beside a baseline
measured in the same run:

- a bare aiohttp process answering a constant ~300 B JSON (the baseline: what one Python
  aiohttp event loop answers on this machine);
- Handle REST resolves (`GET /api/handles/{id}`), with `?proof=true`, and GS1 Digital Link
  redirects (`GET /01/{gtin}/21/{serial}`, a 307), all from one single-validator node;
- gRPC Resolve from the same node;
- a 3-member etcd's serializable gets, over its HTTP/JSON gateway and over gRPC.

HTTP is driven by wrk (Debian's package, installed with apt-get when missing; one wrk thread
so the servers keep the other core), gRPC by the benchmarks' own grpc.aio client; the table
names the transport and the client of every row, so only rows with the same client compare.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import node_load
from bench.debian import find_or_install
from bench.etcd_cluster import RANGE_METHOD, EtcdCluster, find_or_install_etcd, put_request
from bench.etcd_cluster import range_request as etcd_range_request
from bench.report import print_table, rate, ratio
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.gs1 import check_digit
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node import keystore, launcher
from sparkchain.node.config import dial_address
from sparkchain.node.home import NodeHome, free_loopback_ports, init_home
from sparkchain.node.mempool import wall_clock_ms as now_ms
from sparkchain.proto import api_pb2, api_pb2_grpc

IN_FLIGHT = 64
PREFIX = "88.608"
BATCH_ITEMS = 1000
PATHS_PER_SCRIPT = 4096  # requests rotate over this many distinct identifiers
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WrkRun:
    per_second: float
    p99_ms: float
    requests: int
    bad: int  # answers that were not 2xx/3xx, plus socket errors


def run(quick: bool) -> None:
    wrk, why_not = find_or_install("wrk", "wrk")
    if wrk is None:
        print(f"gateway benchmark skipped: {why_not}")
        return
    with tempfile.TemporaryDirectory(prefix="spark-gateway-bench-") as tmp:
        figures = asyncio.run(_measure(Path(tmp), wrk, quick))
    _report(figures)


async def _measure(tmp: Path, wrk: str, quick: bool) -> dict[str, object]:
    seconds = 3.0 if quick else 10.0
    # more identifiers than the gateway's answer cache holds, so that a run over all of
    # them in turn never hits it (the "cold" rows)
    count = 20_000
    figures: dict[str, object] = {"identifiers": count, "seconds": seconds}
    baseline_port = free_loopback_ports(1)[0]
    baseline = subprocess.Popen(
        [sys.executable, "-m", "bench.http_baseline", str(baseline_port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert baseline.stdout is not None and baseline.stdout.readline().strip() == b"ready"
        base = f"http://127.0.0.1:{baseline_port}"
        figures["baseline"] = _wrk(wrk, tmp, base, ["/api/handles/x"], seconds)
    finally:
        baseline.terminate()
        baseline.wait(timeout=10)

    home = init_home(tmp / "node").home
    await asyncio.to_thread(launcher.start_node, home)
    try:
        api = dial_address(home.config().api.listen)
        http = "http://" + dial_address(home.config().http.listen)
        names, links = await asyncio.to_thread(_populate, home, api, count)
        picks = random.Random(11)
        chosen = [picks.randrange(count) for _ in range(PATHS_PER_SCRIPT)]
        resolves = [f"/api/handles/{names[i]}" for i in chosen]
        proofs = [f"{path}?proof=true" for path in resolves]
        redirects = [links[i] for i in chosen]
        for path, expected in ((resolves[0], 200), (proofs[0], 200), (redirects[0], 307)):
            _expect_status(http + path, expected)
        figures["resolve"] = _wrk(wrk, tmp, http, resolves, seconds)
        every = [f"/api/handles/{name}" for name in names]
        figures["resolve_cold"] = _wrk(wrk, tmp, http, every, seconds)
        figures["proof"] = _wrk(wrk, tmp, http, proofs, seconds)
        figures["redirect"] = _wrk(wrk, tmp, http, redirects, seconds)
        figures["grpc"] = await node_load.resolve_load(api, names, False, IN_FLIGHT, seconds)
    finally:
        await asyncio.to_thread(launcher.stop_node, home)
    figures["etcd"] = await _etcd(tmp, wrk, seconds)
    return figures


def _populate(home: NodeHome, api: str, count: int) -> tuple[list[str], list[str]]:
    """Register `count` identifiers, each a GTIN+serial Digital Link key with a URL and an
    EMAIL value; (their identifiers, their Digital Link paths)."""
    import grpc

    root = keystore.read_key_file(home.keys_dir / "root.pem")
    builder = TxBuilder(home.genesis().chain_id, root, random.Random(7))
    gtin_body = "0950600013435"
    gtin = gtin_body + str(check_digit(gtin_body))
    suffixes = [f"01/{gtin}/21/S{i:06d}" for i in range(count)]
    stamp = now_ms()
    txs = [builder.create_prefix(PREFIX, bid_from_public_key(root.public_key), now_ms=stamp)]
    for start in range(0, count, BATCH_ITEMS):
        items = [
            (
                suffix,
                [
                    value(1, "URL", f"https://example.com/p/{suffix}"),
                    value(2, "EMAIL", "ops@example.com"),
                ],
            )
            for suffix in suffixes[start : start + BATCH_ITEMS]
        ]
        txs.append(builder.register_batch(PREFIX, items, now_ms=stamp))
    with grpc.insecure_channel(api) as channel:
        stub = api_pb2_grpc.IdentifiersStub(channel)
        for tx in txs:
            answer = stub.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True), timeout=120)
            if not answer.committed:
                raise RuntimeError(f"bench setup tx not committed: {answer}")
    return [f"{PREFIX}/{s}" for s in suffixes], [f"/{s}" for s in suffixes]


def _expect_status(url: str, expected: int) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != expected:
        raise RuntimeError(f"bench setup: GET {url} answered {status}, expected {expected}")


def _wrk(
    wrk: str,
    tmp: Path,
    base: str,
    paths: list[str],
    seconds: float,
    method: str = "GET",
    bodies: list[str] | None = None,
) -> WrkRun:
    """wrk, one thread, IN_FLIGHT connections, rotating over `paths` (and `bodies`)."""
    script = tmp / f"wrk-{time.monotonic_ns()}.lua"
    requests = bodies if bodies is not None else paths
    lines = [
        "local items = {",
        *(f"  {json.dumps(item)}," for item in requests),
        "}",
        "local i = 0",
        "request = function()",
        "  i = i % #items + 1",
    ]
    if bodies is not None:
        lines.append(
            f'  return wrk.format("{method}", {json.dumps(paths[0])}, '
            '{["Content-Type"] = "application/json"}, items[i])'
        )
    else:
        lines.append(f'  return wrk.format("{method}", items[i])')
    lines.append("end")
    script.write_text("\n".join(lines) + "\n")
    argv = [wrk, "-t1", f"-c{IN_FLIGHT}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    done = subprocess.run([*argv, base], capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()[-300:]}")
    return _parse_wrk(done.stdout)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _parse_wrk(out: str) -> WrkRun:
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors is not None:
        bad += sum(int(n) for n in errors.groups())
    p99_ms = float(p99.group(1)) * _UNITS_MS[p99.group(2)] if p99 else float("nan")
    return WrkRun(per_second, p99_ms, requests, bad)


async def _etcd(tmp: Path, wrk: str, seconds: float) -> dict[str, object]:
    binary, why_not = await asyncio.to_thread(find_or_install_etcd)
    if binary is None:
        return {"skipped": why_not}
    directory = tmp / "etcd"
    directory.mkdir()
    cluster = EtcdCluster(binary, directory)
    await asyncio.to_thread(cluster.start)
    try:
        keys = [f"{PREFIX}/01/E{i:06d}".encode() for i in range(PATHS_PER_SCRIPT)]
        leader = cluster.client_addresses[0]
        puts = [put_request(key, b"https://example.com/p/" + key) for key in keys]
        await node_load.raw_unary_load(
            leader, "/etcdserverpb.KV/Put", puts, IN_FLIGHT, min(seconds, 3.0)
        )
        bodies = [
            json.dumps({"key": base64.b64encode(key).decode(), "serializable": True})
            for key in keys
        ]
        http = _wrk(wrk, tmp, f"http://{leader}", ["/v3/kv/range"], seconds, "POST", bodies)
        gets = [etcd_range_request(key, serializable=True) for key in keys]
        grpc_gets = await node_load.raw_unary_load(leader, RANGE_METHOD, gets, IN_FLIGHT, seconds)
    finally:
        await asyncio.to_thread(cluster.stop)
    return {"http": http, "grpc": grpc_gets}


def _report(f: dict[str, object]) -> None:
    baseline: WrkRun = f["baseline"]  # type: ignore[assignment]
    resolve: WrkRun = f["resolve"]  # type: ignore[assignment]
    cold: WrkRun = f["resolve_cold"]  # type: ignore[assignment]
    proof: WrkRun = f["proof"]  # type: ignore[assignment]
    redirect: WrkRun = f["redirect"]  # type: ignore[assignment]
    grpc: node_load.Throughput = f["grpc"]  # type: ignore[assignment]
    rows = [
        [
            label,
            "HTTP/1.1 JSON, wrk",
            rate(run.per_second),
            ratio(run.per_second / baseline.per_second),
            f"{run.p99_ms:.1f} ms",
            str(run.bad),
        ]
        for label, run in (
            ("bare aiohttp, constant 358 B JSON", baseline),
            (f"Handle REST resolve, {PATHS_PER_SCRIPT:,} ids (answers cached)", resolve),
            (f"Handle REST resolve, all {f['identifiers']:,} ids in turn (uncached)", cold),
            (f"Handle REST resolve ?proof=true, {PATHS_PER_SCRIPT:,} ids (cached)", proof),
            ("Digital Link redirect (307)", redirect),
        )
    ]
    rows.append(
        [
            "gRPC Resolve, same node",
            "gRPC, grpc.aio client",
            rate(grpc.per_second),
            ratio(grpc.per_second / baseline.per_second),
            f"{grpc.percentile_ms(0.99):.1f} ms",
            str(grpc.failed),
        ]
    )
    print_table(
        f"Gateway reads on one node ({f['identifiers']:,} identifiers), {IN_FLIGHT} in flight, "
        f"{f['seconds']:g} s each",
        ["server", "transport, client", "requests/s", "÷ baseline", "p99", "errors"],
        rows,
        goals=[
            ("baseline", None),
            ("≥ 0.6x", resolve.per_second >= 0.6 * baseline.per_second),
            ("≥ 0.6x", cold.per_second >= 0.6 * baseline.per_second),
            ("-", None),
            ("-", None),
            ("-", None),
        ],
    )
    etcd: dict[str, object] = f["etcd"]  # type: ignore[assignment]
    if "skipped" in etcd:
        print(f"etcd comparison skipped: {etcd['skipped']}")
        return
    etcd_http: WrkRun = etcd["http"]  # type: ignore[assignment]
    etcd_grpc: node_load.Throughput = etcd["grpc"]  # type: ignore[assignment]
    print_table(
        f"Reads beside a 3-member etcd on loopback (serializable gets), {IN_FLIGHT} in flight",
        ["transport, client", "etcd gets/s", "sparkchain resolves/s", "sparkchain ÷ etcd"],
        [
            [
                "HTTP/1.1 JSON, wrk (etcd: POST /v3/kv/range; ours: GET /api/handles, cached)",
                rate(etcd_http.per_second),
                rate(resolve.per_second),
                ratio(resolve.per_second / etcd_http.per_second),
            ],
            [
                "the same, ours uncached (all ids in turn)",
                rate(etcd_http.per_second),
                rate(cold.per_second),
                ratio(cold.per_second / etcd_http.per_second),
            ],
            [
                "gRPC, grpc.aio client (etcd: KV.Range; ours: Resolve)",
                rate(etcd_grpc.per_second),
                rate(grpc.per_second),
                ratio(grpc.per_second / etcd_grpc.per_second),
            ],
        ],
        goals=[
            ("≥ 1x", resolve.per_second >= etcd_http.per_second),
            ("≥ 1x", cold.per_second >= etcd_http.per_second),
            ("-", None),
        ],
        caption=f"etcd errors: HTTP {etcd_http.bad}, gRPC {etcd_grpc.failed}",
    )
