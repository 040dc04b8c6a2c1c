"""Fixtures shared by more than one test file. The builders behind them live in
tests/helpers/; a fixture used by one file only stays in that file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.ledger import LedgerChain


@pytest.fixture
def ledger_chain(tmp_path: Path) -> Iterator[LedgerChain]:
    """An empty ledger on disk (the test genesis: acme owns 88), grown block by block."""
    chain = LedgerChain(tmp_path / "ledger")
    yield chain
    chain.close()
