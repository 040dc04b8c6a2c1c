"""The Ledger facade (node/ledger.py): opening, execution, commit, every read, proofs.

Names used: `acme` owns prefix `88` (genesis), `root` is the root authority, `mallory` a
stranger. Blocks are committed with real quorum certificates (tests/helpers/ledger.py).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import Identifier, parse_identifier, parse_identifier_by_rules
from sparkchain.ledger import smt
from sparkchain.ledger.genesis import apply_genesis
from sparkchain.ledger.records import encode_prefix, encode_record
from sparkchain.ledger.rules import MemoryState
from sparkchain.node import schema
from sparkchain.node.ledger import Ledger
from sparkchain.node.overlay import Overlay
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import bid_of, make_test_genesis, value
from tests.helpers.ledger import LedgerChain, certificate, proposer, register_widget


def _code(error: pytest.ExceptionInfo[SparkError]) -> ErrorCode:
    return error.value.code


# ---- opening ----


def test_a_new_ledger_holds_the_genesis_state_at_height_0(ledger_chain: LedgerChain) -> None:
    ledger = ledger_chain.ledger
    assert ledger.height == 0
    assert ledger.last_block_hash == ledger_chain.genesis.genesis_hash
    assert ledger.last_header() is None
    assert ledger.validators == tuple(v.public_key for v in ledger_chain.genesis.validators)
    prefix, children = ledger.prefix_info("88")
    assert prefix.owner == bid_of("acme") and prefix.created_height == 0
    assert children == []
    assert ledger.state_root == _root_of_state(_genesis_state(ledger_chain))


def test_reopening_keeps_the_head(ledger_chain: LedgerChain) -> None:
    ledger_chain.commit(_register(ledger_chain, "88/a"))
    ledger_chain.commit(_register(ledger_chain, "88/b"))
    head = (
        ledger_chain.ledger.height,
        ledger_chain.ledger.last_block_hash,
        ledger_chain.ledger.state_root,
    )
    header = ledger_chain.ledger.last_header()
    ledger_chain.reopen()
    assert (
        ledger_chain.ledger.height,
        ledger_chain.ledger.last_block_hash,
        ledger_chain.ledger.state_root,
    ) == head
    assert ledger_chain.ledger.last_header() == header


def test_opening_with_another_genesis_is_refused(ledger_chain: LedgerChain) -> None:
    ledger_chain.close()
    other = make_test_genesis(chain_id="another-chain")
    with pytest.raises(SparkError, match="was created from genesis") as caught:
        Ledger.open(ledger_chain.path, other)
    assert _code(caught) == ErrorCode.INVALID_GENESIS


def test_a_ledger_open_in_another_handle_is_unavailable(ledger_chain: LedgerChain) -> None:
    with pytest.raises(SparkError) as caught:
        Ledger.open(ledger_chain.path, ledger_chain.genesis)
    assert _code(caught) == ErrorCode.UNAVAILABLE


def test_a_ledger_without_head_is_reported_corrupt(ledger_chain: LedgerChain) -> None:
    ledger_chain.ledger.db.delete(schema.META_HEAD)
    ledger_chain.close()
    with pytest.raises(SparkError, match="no head record") as caught:
        Ledger.open(ledger_chain.path, ledger_chain.genesis)
    assert _code(caught) == ErrorCode.STORAGE_CORRUPT


# ---- building, validating, committing ----


def _register(chain: LedgerChain, identifier: str, signer: str = "acme") -> list[pb.SignedTx]:
    maker = chain.signer(signer)
    return [maker.register(identifier, [value(1, "URL", "https://x")], now_ms=chain.next_time_ms)]


def test_build_block_drops_invalid_txs_with_their_error(ledger_chain: LedgerChain) -> None:
    acme, mallory = ledger_chain.signer("acme"), ledger_chain.signer("mallory")
    now = ledger_chain.next_time_ms
    good = [acme.register(f"88/ok-{i}", now_ms=now) for i in range(3)]
    stranger = mallory.register("88/theirs", now_ms=now)
    no_prefix = acme.register("77/x", now_ms=now)
    twice = acme.register("88/ok-1", now_ms=now)
    built = ledger_chain.build([good[0], stranger, good[1], no_prefix, twice, good[2]])
    assert list(built.block.txs) == good
    assert [(tx, error.code) for tx, error in built.rejected] == [
        (stranger, ErrorCode.UNAUTHORIZED),
        (no_prefix, ErrorCode.NOT_FOUND),
        (twice, ErrorCode.EXISTS),
    ]


def test_build_block_raises_a_stale_clock_above_the_previous_block(
    ledger_chain: LedgerChain,
) -> None:
    ledger_chain.commit()
    last = ledger_chain.ledger.last_block_time_ms
    built = ledger_chain.ledger.build_block([], last - 5000, proposer(ledger_chain.genesis))
    assert pb.BlockHeader.FromString(built.block.header).time_ms == last + 1


def test_build_block_refuses_a_proposer_that_is_not_a_validator(ledger_chain: LedgerChain) -> None:
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.build_block([], ledger_chain.next_time_ms, b"\x01" * 32)
    assert _code(caught) == ErrorCode.INVALID_ARGUMENT


def test_nothing_is_written_before_commit_and_discarded_proposals_leave_no_trace(
    ledger_chain: LedgerChain,
) -> None:
    round0 = ledger_chain.build(_register(ledger_chain, "88/round-0"))
    round1 = ledger_chain.build(_register(ledger_chain, "88/round-1"))
    assert ledger_chain.ledger.height == 0
    with pytest.raises(SparkError):
        ledger_chain.ledger.resolve("88/round-0")
    ledger_chain.ledger.commit_block(
        round1.pending, certificate(ledger_chain.genesis, 1, round1.block_hash, round_=1)
    )
    assert ledger_chain.ledger.resolve("88/round-1").identifier == "88/round-1"
    with pytest.raises(SparkError):
        ledger_chain.ledger.resolve("88/round-0")
    with pytest.raises(SparkError, match="does not follow the last committed block") as caught:
        ledger_chain.ledger.commit_block(
            round0.pending, certificate(ledger_chain.genesis, 1, round0.block_hash)
        )
    assert _code(caught) == ErrorCode.INVALID_BLOCK


def test_validating_the_same_block_twice_executes_it_once(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build(_register(ledger_chain, "88/a"))
    ledger_chain.reopen()
    first = ledger_chain.ledger.validate_block(built.block_bytes)
    assert ledger_chain.ledger.validate_block(built.block_bytes) is first
    ledger_chain.ledger.commit_block(first, certificate(ledger_chain.genesis, 1, first.block_hash))
    assert ledger_chain.ledger.state_root == built.pending.header.state_root


def test_commit_refuses_a_certificate_for_another_block(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build()
    for cert in (
        certificate(ledger_chain.genesis, 1, b"\x02" * 32),
        certificate(ledger_chain.genesis, 2, built.block_hash),
    ):
        with pytest.raises(SparkError) as caught:
            ledger_chain.ledger.commit_block(built.pending, cert)
        assert _code(caught) == ErrorCode.INVALID_CERTIFICATE
    assert ledger_chain.ledger.height == 0


def test_the_state_root_is_the_tree_of_every_record_and_prefix(ledger_chain: LedgerChain) -> None:
    """The one-pass per-block update gives the root of a tree built from scratch."""
    rng = random.Random(7)
    model = _genesis_state(ledger_chain)
    acme, root = ledger_chain.signer("acme"), ledger_chain.signer("root")
    for height in range(1, 6):
        now = ledger_chain.next_time_ms
        txs = [acme.register(f"88/{rng.randrange(10**6)}-{i}", now_ms=now) for i in range(20)]
        txs.append(root.create_prefix(f"{height}0", bid_of("acme"), now_ms=now))
        if height > 1:
            txs.append(
                acme.update(f"88/first-{height - 1}", [value(2, "EMAIL", "a@b")], now_ms=now)
            )
        txs.append(acme.register(f"88/first-{height}", now_ms=now))
        built = ledger_chain.commit(txs)
        assert built.rejected == []
        for receipt in built.pending.receipts:
            for record in receipt.records:
                model.records[record.key] = record
            for prefix in receipt.prefixes:
                model.prefixes[prefix.key] = prefix
        assert ledger_chain.ledger.state_root == _root_of_state(model)


def _genesis_state(chain: LedgerChain) -> MemoryState:
    state = MemoryState()
    apply_genesis(state, chain.genesis)
    return state


def _root_of_state(state: MemoryState) -> bytes:
    changes: dict[bytes, bytes | None] = {}
    for key, record in state.records.items():
        changes[smt.record_tree_key(key)] = encode_record(record)
    for key, prefix in state.prefixes.items():
        changes[smt.prefix_tree_key(key)] = encode_prefix(prefix)
    return smt.apply({}, smt.EMPTY_ROOT, changes).root


# ---- check_tx ----


def test_check_tx_applies_the_rules_to_the_latest_state(ledger_chain: LedgerChain) -> None:
    committed = _register(ledger_chain, "88/taken")
    ledger_chain.commit(committed)
    acme = ledger_chain.signer("acme")
    now = ledger_chain.next_time_ms
    body = ledger_chain.ledger.check_tx(acme.register("88/free", now_ms=now), now)
    assert body.register.identifier == "88/free"
    cases = [
        (committed[0], ErrorCode.DUPLICATE_TX),
        (acme.register("88/taken", now_ms=now), ErrorCode.EXISTS),
        (ledger_chain.signer("mallory").register("88/x", now_ms=now), ErrorCode.UNAUTHORIZED),
        (acme.register("88/late", now_ms=now - 10**7), ErrorCode.EXPIRED),
    ]
    for tx, code in cases:
        with pytest.raises(SparkError) as caught:
            ledger_chain.ledger.check_tx(tx, now)
        assert _code(caught) == code, tx
    # nothing of what check_tx executed reached the state
    with pytest.raises(SparkError):
        ledger_chain.ledger.resolve("88/free")


def test_check_tx_checks_signature_and_chain(ledger_chain: LedgerChain) -> None:
    now = ledger_chain.next_time_ms
    forged = ledger_chain.signer("acme").register("88/a", now_ms=now)
    forged.signature = bytes(64)
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.check_tx(forged, now)
    assert _code(caught) == ErrorCode.BAD_SIGNATURE
    ledger_chain.ledger.check_tx(forged, now, verify_signature=False)
    other_chain = LedgerChain(
        ledger_chain.path.parent / "other", make_test_genesis(chain_id="other")
    )
    try:
        foreign = other_chain.signer("acme").register("88/a", now_ms=now)
    finally:
        other_chain.close()
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.check_tx(foreign, now)
    assert _code(caught) == ErrorCode.WRONG_CHAIN


def test_a_verified_signature_does_not_cover_another_body(ledger_chain: LedgerChain) -> None:
    now = ledger_chain.next_time_ms
    genuine = ledger_chain.signer("acme").register("88/a", now_ms=now)
    ledger_chain.ledger.mark_signatures_verified([genuine])
    altered = pb.TxBody.FromString(genuine.body)
    altered.register.identifier = "88/b"
    reused = pb.SignedTx(body=altered.SerializeToString(), signature=genuine.signature)
    built = ledger_chain.build([reused, genuine])
    assert list(built.block.txs) == [genuine]
    assert built.rejected[0][1].code == ErrorCode.BAD_SIGNATURE


# ---- reads ----


def test_resolve_is_case_insensitive_and_filters_like_handle(ledger_chain: LedgerChain) -> None:
    register_widget(ledger_chain)
    ledger = ledger_chain.ledger
    record = ledger.resolve("88/widget-1")
    assert record.identifier == "88/Widget-1" and [v.index for v in record.values] == [1, 2, 1001]
    assert [v.index for v in ledger.resolve("88/WIDGET-1", types=["URL"]).values] == [1, 1001]
    assert [v.index for v in ledger.resolve("88/Widget-1", indexes=[2]).values] == [2]
    both = ledger.resolve("88/Widget-1", types=["EMAIL"], indexes=[1001])
    assert [v.index for v in both.values] == [2, 1001]
    assert list(ledger.resolve("88/Widget-1", types=["NONE"]).values) == []


_IDENTIFIER_PIECES = st.sampled_from(
    ["88", "608", ".", "8.", "/", "a", "Z", "-", " ", "\t", "\x7f", "é", "~", "x" * 100, ".."]
)


@given(st.lists(_IDENTIFIER_PIECES, max_size=24).map("".join))
@example("1.2.3.4.5.6.7.8/a")
@example("1.2.3.4.5.6.7.8.9/a")
@example("88/" + "x" * 200)
@example("88/" + "x" * 201)
@example("a" * 55 + "/" + "x" * 200)
@example("a" * 56 + "/" + "x" * 199)
@example("88/a b")
@example("88/ab ")
def test_the_identifier_fast_path_agrees_with_the_rules(text: str) -> None:
    """parse_identifier's regular expression accepts, rejects and normalises exactly as
    the character-by-character rules do."""
    try:
        expected: Identifier | ErrorCode = parse_identifier_by_rules(text)
    except SparkError as error:
        expected = error.code
    try:
        got: Identifier | ErrorCode = parse_identifier(text)
    except SparkError as error:
        got = error.code
    assert got == expected


def test_resolve_errors(ledger_chain: LedgerChain) -> None:
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.resolve("88/missing")
    assert _code(caught) == ErrorCode.NOT_FOUND
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.resolve("no-slash")
    assert _code(caught) == ErrorCode.INVALID_IDENTIFIER


def test_history_lists_every_change_with_its_tx_and_signer(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    txs = []
    txs.append(
        ledger_chain.commit([acme.register("88/h", now_ms=ledger_chain.next_time_ms)]).block.txs[0]
    )
    upsert = [value(5, "URL", "https://new")]
    txs.append(
        ledger_chain.commit(
            [acme.update("88/h", upsert, now_ms=ledger_chain.next_time_ms)]
        ).block.txs[0]
    )
    ledger_chain.commit()  # an empty block changes nothing
    transfer = acme.transfer("88/h", bid_of("bob"), now_ms=ledger_chain.next_time_ms)
    txs.append(ledger_chain.commit([transfer]).block.txs[0])
    revoke = ledger_chain.signer("bob").revoke("88/h", "recalled", now_ms=ledger_chain.next_time_ms)
    txs.append(ledger_chain.commit([revoke]).block.txs[0])
    history = ledger_chain.ledger.history("88/H")
    assert [e.operation for e in history] == ["register", "update", "transfer", "revoke"]
    assert [e.height for e in history] == [1, 2, 4, 5]
    assert [e.signer for e in history] == [bid_of("acme")] * 3 + [bid_of("bob")]
    assert [ledger_chain.ledger.get_tx(e.tx_id)[0] for e in history] == txs
    assert history[1].record.values[-1].index == 5
    assert history[3].record.status == pb.REVOKED and history[3].record.owner == bid_of("bob")
    assert history[0].time_ms < history[1].time_ms
    assert ledger_chain.ledger.history("88/h", limit=2) == history[2:]
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.history("88/never")
    assert _code(caught) == ErrorCode.NOT_FOUND
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.history("88/h", limit=-1)
    assert _code(caught) == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.history("88/ bad")
    assert _code(caught) == ErrorCode.INVALID_IDENTIFIER


def test_list_identifiers_pages_in_key_order(ledger_chain: LedgerChain) -> None:
    acme, root = ledger_chain.signer("acme"), ledger_chain.signer("root")
    now = ledger_chain.next_time_ms
    suffixes = [f"item-{i:02d}" for i in range(25)]
    rng = random.Random(3)
    rng.shuffle(suffixes)
    batch = acme.register_batch("88", [(s, []) for s in suffixes], now_ms=now)
    sub = acme.create_prefix("88.1", bid_of("acme"), now_ms=now)
    other_top = root.create_prefix("880", bid_of("acme"), now_ms=now)
    ledger_chain.commit([batch, sub, other_top])
    now = ledger_chain.next_time_ms
    ledger_chain.commit(
        [acme.register("88.1/below", now_ms=now), acme.register("880/next-door", now_ms=now)]
    )
    pages = []
    token = ""
    while True:
        records, token = ledger_chain.ledger.list_identifiers("88", page_size=10, page_token=token)
        pages.append([r.identifier for r in records])
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == [f"88/item-{i:02d}" for i in range(25)]
    records, token = ledger_chain.ledger.list_identifiers("88", page_size=25)
    assert len(records) == 25 and token == ""
    records, token = ledger_chain.ledger.list_identifiers("88")
    assert len(records) == 25 and token == ""
    assert [r.identifier for r in ledger_chain.ledger.list_identifiers("88.1")[0]] == ["88.1/below"]


def test_list_identifiers_errors(ledger_chain: LedgerChain) -> None:
    ledger_chain.commit(_register(ledger_chain, "88/a"))
    cases = [
        (("77",), ErrorCode.NOT_FOUND),
        (("8 8",), ErrorCode.INVALID_PREFIX),
        (("88", -1), ErrorCode.INVALID_ARGUMENT),
        (("88", 10, "%%%"), ErrorCode.INVALID_ARGUMENT),
    ]
    for args, code in cases:
        with pytest.raises(SparkError) as caught:
            ledger_chain.ledger.list_identifiers(*args)  # type: ignore[arg-type]
        assert _code(caught) == code, args
    _, token = ledger_chain.ledger.list_identifiers("88", page_size=1)
    assert token == ""
    ledger_chain.commit(_register(ledger_chain, "88/b"))
    _, token = ledger_chain.ledger.list_identifiers("88", page_size=1)
    assert token
    root = ledger_chain.signer("root")
    ledger_chain.commit(
        [root.create_prefix("99", bid_of("acme"), now_ms=ledger_chain.next_time_ms)]
    )
    with pytest.raises(SparkError, match="does not belong to prefix 99"):
        ledger_chain.ledger.list_identifiers("99", page_size=1, page_token=token)


def test_prefix_info_gives_owner_registrars_and_children(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    now = ledger_chain.next_time_ms
    ledger_chain.commit(
        [
            acme.create_prefix("88.608", bid_of("acme"), now_ms=now),
            acme.create_prefix("88.100", bid_of("bob"), now_ms=now),
            acme.set_registrars("88", add=[bid_of("reg")], now_ms=now),
        ]
    )
    ledger_chain.commit(
        [acme.create_prefix("88.608.1", bid_of("acme"), now_ms=ledger_chain.next_time_ms)]
    )
    prefix, children = ledger_chain.ledger.prefix_info("88")
    assert prefix.owner == bid_of("acme") and list(prefix.registrars) == [bid_of("reg")]
    assert children == ["88.100", "88.608"]
    info, grandchildren = ledger_chain.ledger.prefix_info("88.608")
    assert info.created_height == 1 and grandchildren == ["88.608.1"]
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.prefix_info("88.7")
    assert _code(caught) == ErrorCode.NOT_FOUND
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.prefix_info("88..7")
    assert _code(caught) == ErrorCode.INVALID_PREFIX


def test_blocks_and_txs_are_found_by_height_hash_and_id(ledger_chain: LedgerChain) -> None:
    built1 = ledger_chain.commit(_register(ledger_chain, "88/a"))
    built2 = ledger_chain.commit(_register(ledger_chain, "88/b") + _register(ledger_chain, "88/c"))
    block, raw, cert = ledger_chain.ledger.get_block(2)
    assert raw == built2.block_bytes and block == built2.block
    assert cert == certificate(ledger_chain.genesis, 2, built2.block_hash)
    assert block.last_commit == ledger_chain.ledger.get_block(1)[2]
    assert ledger_chain.ledger.block_height(built1.block_hash) == 1
    assert ledger_chain.ledger.block_height(built2.block_hash) == 2
    tx_c = built2.block.txs[1]
    assert ledger_chain.ledger.get_tx(built2.pending.tx_ids[1]) == (tx_c, 2, 1)
    for height in (0, 3):
        with pytest.raises(SparkError) as caught:
            ledger_chain.ledger.get_block(height)
        assert _code(caught) == ErrorCode.NOT_FOUND
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.block_height(b"\x00" * 32)
    assert _code(caught) == ErrorCode.NOT_FOUND
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.get_tx(b"\x00" * 32)
    assert _code(caught) == ErrorCode.NOT_FOUND


def test_changes_at_lists_what_a_block_changed_in_order(ledger_chain: LedgerChain) -> None:
    acme = ledger_chain.signer("acme")
    now = ledger_chain.next_time_ms
    built = ledger_chain.commit(
        [
            acme.register("88/one", now_ms=now),
            acme.create_prefix("88.5", bid_of("acme"), now_ms=now),
            acme.register_batch("88", [("two", []), ("three", [])], now_ms=now),
        ]
    )
    events = ledger_chain.ledger.changes_at(1)
    assert [(e.operation, e.identifier, e.prefix) for e in events] == [
        ("register", "88/one", "88"),
        ("create_prefix", "", "88.5"),
        ("register_batch", "88/two", "88"),
        ("register_batch", "88/three", "88"),
    ]
    ids = built.pending.tx_ids
    assert [e.tx_id for e in events] == [ids[0], ids[1], ids[2], ids[2]]
    assert events[0].record == ledger_chain.ledger.resolve("88/one")
    assert all(e.height == 1 for e in events)
    ledger_chain.commit()
    assert ledger_chain.ledger.changes_at(2) == []
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.changes_at(3)
    assert _code(caught) == ErrorCode.NOT_FOUND


# ---- looking up a block's new records in one scan ----


def test_a_scan_learns_which_records_are_absent_and_changes_no_answer(
    ledger_chain: LedgerChain,
) -> None:
    acme = ledger_chain.signer("acme")
    stored = [f"88/sn-{n:03d}" for n in range(0, 40, 3)]
    ledger_chain.commit([acme.register(name, now_ms=ledger_chain.next_time_ms) for name in stored])
    asked = [f"88/SN-{n:03d}" for n in range(45)]
    scanned = Overlay(ledger_chain.ledger.db)
    scanned.learn_absent_records(asked)
    assert len(scanned._absent) == 45 - len(stored)
    plain = Overlay(ledger_chain.ledger.db)
    for key in asked:
        assert scanned.get_record(key) == plain.get_record(key)
    # a range holding many more stored records than keys asked: the scan gives up
    sparse = Overlay(ledger_chain.ledger.db)
    sparse.learn_absent_records(["88/SN-000", "88/SN-0395"])
    assert not sparse._absent
    assert sparse.get_record("88/SN-000") == plain.get_record("88/SN-000")


def test_a_batch_repeating_a_committed_identifier_is_refused_whatever_its_case(
    ledger_chain: LedgerChain,
) -> None:
    acme = ledger_chain.signer("acme")
    ledger_chain.commit([acme.register("88/lot-5", now_ms=ledger_chain.next_time_ms)])
    now = ledger_chain.next_time_ms
    items = [(f"Lot-{n}", [value(1, "URL", "https://x")]) for n in range(3, 8)]
    batch = acme.register_batch("88", items, now_ms=now)
    fresh = acme.register_batch("88", items[:2], now_ms=now)
    built = ledger_chain.commit([batch, fresh])
    assert [signed.body for signed in built.block.txs] == [fresh.body]
    assert [error.code for _, error in built.rejected] == [ErrorCode.EXISTS]
    assert ledger_chain.ledger.resolve("88/lot-3").identifier == "88/Lot-3"
