"""The owner index (node/schema.py `o`): what each BID owns, kept by every commit, moved by
transfers, paged, rebuilt when a schema 2 ledger is opened, and checked by
`spark ledger verify` like every other derived key."""

from __future__ import annotations

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import sm3
from sparkchain.identifiers.tx import value
from sparkchain.ledger import smt
from sparkchain.node import schema
from sparkchain.node.chain_check import check_chain
from tests.helpers.chain import bid_of
from tests.helpers.ledger import LedgerChain

RECORD, PREFIX = schema.OWNED_RECORD, schema.OWNED_PREFIX


def owned(chain: LedgerChain, name: str, kind: bytes) -> list[str]:
    keys, rest = chain.ledger.owned_by(bid_of(name), kind, page_size=1000)
    assert rest == ""
    return keys


def test_registrations_and_transfers_move_owner_entries(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    at = ledger_chain.next_time_ms
    ledger_chain.commit(
        [
            acme.register("88/W-1", [value(1, "URL", "https://e.x/1")], now_ms=at),
            acme.register_batch("88", [("W-2", []), ("W-3", [])], now_ms=at),
        ]
    )
    assert owned(ledger_chain, "acme", PREFIX) == ["88"]  # from the genesis
    assert owned(ledger_chain, "acme", RECORD) == ["88/W-1", "88/W-2", "88/W-3"]
    assert owned(ledger_chain, "bob", RECORD) == []

    at = ledger_chain.next_time_ms
    ledger_chain.commit(
        [
            acme.transfer("88/W-2", bid_of("bob"), now_ms=at),
            acme.revoke("88/W-3", "recalled", now_ms=at),  # a revoked record keeps its owner
            acme.transfer_prefix("88", bid_of("bob"), now_ms=at),
        ]
    )
    assert owned(ledger_chain, "acme", RECORD) == ["88/W-1", "88/W-3"]
    assert owned(ledger_chain, "bob", RECORD) == ["88/W-2"]
    assert owned(ledger_chain, "acme", PREFIX) == []
    assert owned(ledger_chain, "bob", PREFIX) == ["88"]

    # a record passed on twice within one block ends with one entry, its last owner's
    bob = ledger_chain.signer("bob")
    at = ledger_chain.next_time_ms
    ledger_chain.commit(
        [
            bob.transfer("88/W-2", bid_of("carol"), now_ms=at),
            ledger_chain.signer("carol").transfer("88/W-2", bid_of("dave"), now_ms=at),
        ]
    )
    assert owned(ledger_chain, "bob", RECORD) == []
    assert owned(ledger_chain, "carol", RECORD) == []
    assert owned(ledger_chain, "dave", RECORD) == ["88/W-2"]


def test_owned_keys_come_in_pages(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    items = [(f"P-{i:02d}", []) for i in range(7)]
    ledger_chain.commit([acme.register_batch("88", items, now_ms=ledger_chain.next_time_ms)])
    seen: list[str] = []
    after = ""
    while True:
        page, after = ledger_chain.ledger.owned_by(bid_of("acme"), RECORD, 3, after)
        assert len(page) <= 3
        seen += page
        if not after:
            break
    assert seen == [f"88/P-{i:02d}" for i in range(7)]


def test_owned_by_refuses_what_is_not_a_bid(ledger_chain: LedgerChain) -> None:
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.owned_by("acme", RECORD)
    assert caught.value.code is ErrorCode.INVALID_BID
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.owned_by(bid_of("acme"), RECORD, page_size=0)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_a_schema_2_ledger_gains_the_index_when_opened(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    at = ledger_chain.next_time_ms
    ledger_chain.commit([acme.register_batch("88", [("U-1", []), ("U-2", [])], now_ms=at)])
    # what a node of the previous version left: no owner index, schema 2
    db = ledger_chain.ledger.db
    for key in list(db.iterator(prefix=schema.OWNER, include_value=False)):
        db.delete(key)
    db.put(schema.META_SCHEMA_VERSION, b"2")
    ledger_chain.reopen()
    assert ledger_chain.ledger.db.get(schema.META_SCHEMA_VERSION) == schema.SCHEMA_VERSION
    assert owned(ledger_chain, "acme", RECORD) == ["88/U-1", "88/U-2"]
    assert owned(ledger_chain, "acme", PREFIX) == ["88"]
    ledger_chain.close()
    # the upgraded ledger is exactly what replaying its blocks writes
    report = check_chain(ledger_chain.path, ledger_chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_verify_reports_a_missing_owner_entry(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    ledger_chain.commit([acme.register("88/V-1", [], now_ms=ledger_chain.next_time_ms)])
    ledger_chain.ledger.db.delete(schema.owner_key(bid_of("acme"), RECORD, "88/V-1"))
    ledger_chain.close()
    report = check_chain(ledger_chain.path, ledger_chain.genesis, verify_signatures=False)
    assert not report.ok
    assert "owner index" in (report.problem or "")


@pytest.mark.parametrize("key", ["88.608/ABC-1", "88.608/É/X Y", "88"])
def test_the_keys_built_from_parts_are_the_schema_keys(key: str) -> None:
    """state_writes builds a block's keys from parts it shares between records: the same
    bytes as the schema's functions (the on-disk layout must not move)."""
    owner = bid_of("alice")
    key_bytes = key.encode("utf-8")
    assert schema.owner_key_head(owner, schema.OWNED_RECORD) + key_bytes == schema.owner_key(
        owner, schema.OWNED_RECORD, key
    )
    assert schema.history_key_of(key_bytes, schema.tx_location(7, 3)) == schema.history_key(
        key, 7, 3
    )
    assert smt.record_tree_key_of(key_bytes) == smt.record_tree_key(key)
    assert smt.record_tree_key_of(key_bytes, sm3) == smt.record_tree_key(key, sm3)
