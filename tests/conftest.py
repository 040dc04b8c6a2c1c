"""Fixtures shared by more than one test file, and the `virtual_clock` marker. The builders
behind them live in tests/helpers/; a fixture used by one file only stays in that file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.helpers.ledger import LedgerChain
from tests.helpers.virtual_clock import VirtualClockLoop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "virtual_clock: run this async test and its async fixtures on a loop whose time "
        "jumps to the next timer when nothing is runnable (tests/helpers/virtual_clock.py)",
    )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook: which loop each async test runs on (one per test, so its
    id is unchanged). Unmarked tests get the ordinary loop, as without this hook."""
    if item.get_closest_marker("virtual_clock") is not None:
        return {"virtual_clock": VirtualClockLoop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
def ledger_chain(tmp_path: Path) -> Iterator[LedgerChain]:
    """An empty ledger on disk (the test genesis: acme owns 88), grown block by block."""
    chain = LedgerChain(tmp_path / "ledger")
    yield chain
    chain.close()


@pytest.fixture
def spark_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SPARK_HOME for the CLI this test runs: a directory of its own (not yet made), and
    no key passphrase inherited from the shell that runs the tests."""
    home = tmp_path / "spark-home"
    monkeypatch.setenv("SPARK_HOME", str(home))
    monkeypatch.delenv("SPARK_KEY_PASSPHRASE", raising=False)
    return home
