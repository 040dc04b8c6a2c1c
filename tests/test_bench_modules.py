"""Every benchmark module of `make bench` still imports and exposes run(quick): a moved
import or a renamed function breaks the benchmarks long before anyone runs them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
MODULES = sorted(info.name for info in pkgutil.iter_modules([str(BENCH_DIR)]))


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_listed_benchmark_has_run_quick(name: str) -> None:
    run = importlib.import_module(f"bench.{name}").run
    assert list(inspect.signature(run).parameters) == ["quick"]


WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:18765/x
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.76ms  531.22us   7.92ms   92.30%
    Req/Sec    37.02k     2.32k   40.74k    75.00%
  Latency Distribution
     50%    1.71ms
     75%    1.75ms
     90%    1.85ms
     99%  452.00us
  73568 requests in 2.00s, 35.29MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  36773.67
Transfer/sec:     17.64MB
"""


def test_the_gateway_bench_reads_wrk_output() -> None:
    from bench.gateway_bench import _parse_wrk

    run = _parse_wrk(WRK_OUTPUT)
    assert run.per_second == 36773.67
    assert run.requests == 73568
    assert run.p99_ms == pytest.approx(0.452)
    assert run.bad == 7 + 2 + 1


def test_a_serializable_etcd_range_request_sets_field_7() -> None:
    from bench.etcd_cluster import range_request

    assert range_request(b"k") == bytes.fromhex("0a016b")
    assert range_request(b"k", serializable=True) == bytes.fromhex("0a016b3801")


def test_the_statesync_bench_catches_up_both_ways_on_a_tiny_chain(tmp_path: Path) -> None:
    from bench.ledger_bench import bench_genesis
    from bench.statesync_bench import _block_sync, _in_new_process, _snapshot, _source, _state_sync

    with _source(tmp_path / "source", bench_genesis(), 2000) as source:
        _, manifest = _snapshot(source, tmp_path / "snapshots")
        height, root = source.height, source.state_root
    _, fetched, by_blocks = _in_new_process(
        _block_sync, tmp_path / "source", tmp_path / "by-blocks"
    )
    _, _, by_snapshot = _state_sync(
        tmp_path / "source",
        tmp_path / "snapshots",
        manifest.SerializeToString(),
        tmp_path / "by-snapshot",
    )
    assert by_blocks == by_snapshot == root
    assert manifest.height == height == 2 and fetched > 0
