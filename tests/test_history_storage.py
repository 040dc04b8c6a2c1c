"""How the per-identifier history is stored (node/schema.py `y`, schema 5): every entry but
an identifier's latest holds the record after its change; the latest holds none, its record
being the identifier's current one (`r`), so a registration is not stored twice. Every read
of the history answers as if each entry held its record, a schema 4 ledger (whose latest
entries held a copy) drops the copies when opened, and `spark ledger verify` agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkchain.identifiers.tx import value
from sparkchain.ledger.records import decode_record
from sparkchain.node import schema
from sparkchain.node.chain_check import check_chain
from sparkchain.node.ledger import drop_latest_history_records
from tests.helpers.ledger import LedgerChain

WIDGET = "88/Widget-1"
WIDGET_KEY = "88/WIDGET-1"


def url(height: int, suffix: str = "") -> str:
    return f"https://example.com/v{height}{suffix}"


@pytest.fixture
def chain(tmp_path: Path) -> LedgerChain:
    """WIDGET registered at 1 and updated at 2 and 3, twice in block 3; 88/n-<h> registered
    once at each height 1..3 and never changed."""
    chain = LedgerChain(tmp_path / "ledger")
    acme = chain.signer("acme")
    for height in (1, 2, 3):
        at = chain.next_time_ms
        first = (
            acme.register(WIDGET, [value(1, "URL", url(height))], now_ms=at)
            if height == 1
            else acme.update(WIDGET, [value(1, "URL", url(height, "a"))], now_ms=at)
        )
        txs = [first, acme.register(f"88/n-{height}", now_ms=at)]
        if height == 3:
            txs.append(acme.update(WIDGET, [value(1, "URL", url(height))], now_ms=at))
        chain.commit(txs)
    return chain


def stored_entries(chain: LedgerChain, key: str) -> list[schema.HistoryEntry]:
    with chain.ledger.db.iterator(prefix=schema.history_range(key), include_key=False) as found:
        return [schema.decode_history_entry(raw) for raw in found]


def history_urls(chain: LedgerChain, identifier: str) -> list[tuple[int, str]]:
    return [
        (entry.height, entry.record.values[0].data.decode() if entry.record.values else "")
        for entry in chain.ledger.history(identifier)
    ]


def test_only_the_latest_entry_holds_no_record(chain: LedgerChain) -> None:
    entries = stored_entries(chain, WIDGET_KEY)
    assert [e.height for e in entries] == [1, 2, 3, 3]
    assert [bool(e.record_bytes) for e in entries] == [True, True, True, False]
    assert decode_record(entries[1].record_bytes).values[0].data.decode() == url(2, "a")
    assert [bool(e.record_bytes) for e in stored_entries(chain, "88/N-1")] == [False]


def test_every_history_read_answers_with_the_records(chain: LedgerChain) -> None:
    ledger = chain.ledger
    assert history_urls(chain, WIDGET) == [
        (1, url(1)),
        (2, url(2, "a")),
        (3, url(3, "a")),
        (3, url(3)),
    ]
    assert [e.height for e in ledger.history(WIDGET, limit=1)] == [3]
    assert ledger.history(WIDGET, limit=1)[0].record == ledger.resolve(WIDGET)
    assert ledger.history("88/n-2")[0].record == ledger.resolve("88/n-2")
    for height, expected in ((1, url(1)), (2, url(2, "a")), (3, url(3))):
        assert ledger.resolve_at(WIDGET, height).values[0].data.decode() == expected
        proved = ledger.resolve_with_proof(WIDGET, height)[1].record_bytes
        assert decode_record(proved).values[0].data.decode() == expected
    events = ledger.changes_at(3)
    widget = [e.record.values[0].data.decode() for e in events if e.identifier == WIDGET]
    assert widget == [url(3, "a"), url(3)]
    assert [e.record for e in events if e.identifier == "88/n-3"] == [ledger.resolve("88/n-3")]
    chain.close()
    report = check_chain(chain.path, chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_a_later_change_gives_the_entry_before_its_record_back(chain: LedgerChain) -> None:
    acme = chain.signer("acme")
    before = chain.ledger.resolve("88/n-1")
    chain.commit(
        [acme.update("88/n-1", [value(1, "URL", "https://later")], now_ms=chain.next_time_ms)]
    )
    entries = stored_entries(chain, "88/N-1")
    assert [e.height for e in entries] == [1, 4]
    assert decode_record(entries[0].record_bytes) == before
    assert entries[1].record_bytes == b""
    assert history_urls(chain, "88/n-1") == [(1, ""), (4, "https://later")]


def test_a_schema_4_ledger_drops_its_copies_when_opened(chain: LedgerChain) -> None:
    db = chain.ledger.db
    history = {i: chain.ledger.history(i) for i in (WIDGET, "88/n-1", "88/n-3")}
    # what schema 4 wrote: the latest entry of each identifier held its record too
    latest = {}
    with db.iterator(prefix=schema.HISTORY) as entries:
        for key, raw in entries:
            latest[key[: key.index(schema.SEPARATOR)]] = (key, raw)
    for identifier, (key, raw) in latest.items():
        current = db.get(schema.RECORD + identifier[1:])
        db.put(key, raw + current)
    db.put(schema.META_SCHEMA_VERSION, b"4")
    assert stored_entries(chain, WIDGET_KEY)[-1].record_bytes != b""
    chain.reopen()
    assert chain.ledger.db.get(schema.META_SCHEMA_VERSION) == schema.SCHEMA_VERSION
    assert [bool(e.record_bytes) for e in stored_entries(chain, WIDGET_KEY)] == [
        True,
        True,
        True,
        False,
    ]
    assert {i: chain.ledger.history(i) for i in history} == history
    drop_latest_history_records(chain.ledger.db)  # again, as after a crash: nothing changes
    assert {i: chain.ledger.history(i) for i in history} == history
    chain.close()
    report = check_chain(chain.path, chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_verify_reports_a_latest_entry_that_kept_a_record(chain: LedgerChain) -> None:
    db = chain.ledger.db
    key = schema.history_key("88/N-2", 2, 1)
    db.put(key, db.get(key) + db.get(schema.record_key("88/N-2")))
    chain.close()
    report = check_chain(chain.path, chain.genesis, verify_signatures=False)
    assert not report.ok
    assert report.problem is not None and "history entry '88/N-2'" in report.problem
