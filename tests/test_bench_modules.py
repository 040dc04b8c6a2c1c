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
