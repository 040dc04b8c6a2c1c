"""A ledger that prunes its state tree ([ledger] keep_heights, node/pruning.py): proofs of
the last K heights stay valid, older ones are refused with HEIGHT_PRUNED naming the oldest
kept height, blocks, certificates and history stay complete, the stored tree is exactly
what the kept roots hold, and `spark ledger verify` checks all of that."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import sha256
from sparkchain.identifiers.tags import SMT_LEAF
from sparkchain.identifiers.tx import value
from sparkchain.ledger.proof import verify_resolution
from sparkchain.ledger.records import decode_record
from sparkchain.ledger.smt_nodes import BlockUpdate, check_inner, child, trimmed
from sparkchain.ledger.smt_prune import reachable
from sparkchain.node import pruning, schema
from sparkchain.node.chain_check import check_chain
from sparkchain.node.config import parse_config
from sparkchain.node.storage import TreeNodeStore
from sparkchain.proto import types_pb2 as pb
from tests.helpers.ledger import LedgerChain

WIDGET = "88/Widget-1"


def grow(chain: LedgerChain, blocks: int) -> None:
    """Blocks that each update WIDGET (registered in the first) and register a new id."""
    acme = chain.signer("acme")
    for _ in range(blocks):
        at = chain.next_time_ms
        height = chain.ledger.height + 1
        url = value(1, "URL", f"https://example.com/v{height}")
        first = (
            acme.update(WIDGET, [url], now_ms=at)
            if chain.ledger.height
            else acme.register(WIDGET, [url], now_ms=at)
        )
        chain.commit([first, acme.register(f"88/n-{height}", now_ms=at)])


def stored_tree_nodes(chain: LedgerChain) -> set[bytes]:
    prefix = schema.TREE_NODE
    with chain.ledger.db.iterator(prefix=prefix, include_value=False) as keys:
        return {key[len(prefix) :] for key in keys}


def root_at(chain: LedgerChain, height: int) -> bytes:
    block, _, _ = chain.ledger.get_block(height)
    return pb.BlockHeader.FromString(block.header).state_root


def proved_url(chain: LedgerChain, height: int, identifier: str = WIDGET) -> str | None:
    """The URL that a checked proof at `height` shows (None: proven absent)."""
    record_or_none, proof = chain.ledger.resolve_with_proof(identifier, height)
    validators = chain.genesis.validator_keys
    record, proved_height = verify_resolution(validators, chain.genesis.chain_id, identifier, proof)
    assert proved_height == height
    assert (record is None) == (record_or_none is None)
    return None if record is None else record.values[0].data.decode()


@pytest.fixture
def pruning_chain(tmp_path: Path) -> LedgerChain:
    return LedgerChain(tmp_path / "ledger", keep_heights=3)


def test_the_last_k_heights_stay_provable_and_older_ones_are_refused(
    pruning_chain: LedgerChain,
) -> None:
    grow(pruning_chain, 8)
    ledger = pruning_chain.ledger
    assert ledger.oldest_state == 6
    for height in (6, 7, 8):
        assert proved_url(pruning_chain, height) == f"https://example.com/v{height}"
    assert proved_url(pruning_chain, 6, "88/n-7") is None  # absence, as of height 6
    with pytest.raises(SparkError) as refused:
        ledger.resolve_with_proof(WIDGET, 5)
    assert refused.value.code is ErrorCode.HEIGHT_PRUNED
    assert "height 5 is pruned" in refused.value.message
    assert "from height 6 on" in refused.value.message
    with pytest.raises(SparkError) as beyond:
        ledger.resolve_with_proof(WIDGET, 9)
    assert beyond.value.code is ErrorCode.NOT_FOUND


def test_blocks_certificates_and_history_stay_complete(pruning_chain: LedgerChain) -> None:
    grow(pruning_chain, 8)
    ledger = pruning_chain.ledger
    for height in range(1, 9):
        block, _, certificate = ledger.get_block(height)
        assert certificate is not None and certificate.height == height
        assert len(block.txs) == 2
    history = ledger.history(WIDGET)
    assert [entry.height for entry in history] == list(range(1, 9))
    assert [e.record.values[0].data.decode() for e in history][:2] == [
        "https://example.com/v1",
        "https://example.com/v2",
    ]
    # the record as an old block left it, from the history (no proof needed)
    old = ledger.resolve_at(WIDGET, 2)
    assert old.values[0].data == b"https://example.com/v2"
    with pytest.raises(SparkError) as unknown:
        ledger.resolve_at("88/n-7", 6)
    assert unknown.value.code is ErrorCode.NOT_FOUND


def test_the_stored_tree_is_exactly_what_the_kept_roots_hold(pruning_chain: LedgerChain) -> None:
    for _ in range(4):
        grow(pruning_chain, 3)
        ledger = pruning_chain.ledger
        kept = [root_at(pruning_chain, h) for h in range(ledger.oldest_state, ledger.height + 1)]
        assert stored_tree_nodes(pruning_chain) == reachable(TreeNodeStore(ledger.db), kept)


def test_verify_reports_a_revive_mark_that_says_what_the_trees_do_not(
    pruning_chain: LedgerChain,
) -> None:
    grow(pruning_chain, 4)  # keeps 2..4: removals of 3 and 4 are pending
    db = pruning_chain.ledger.db
    removed_at, pending = next((h, n) for h, n in pruning.queued(db) if h == 4)
    # a mark above its removal would keep the node when the removal falls due
    db.put(schema.stale_mark_key(pending), schema.height_bytes(5))
    pruning_chain.close()
    report = check_chain(pruning_chain.path, pruning_chain.genesis, verify_signatures=False)
    assert report.problem == (
        f"tree node {pending.hex()} removed at height {removed_at} has a revive mark at 5, "
        "but no later height holds it"
    )
    pruning_chain.reopen()
    db = pruning_chain.ledger.db
    db.delete(schema.stale_mark_key(pending))
    stray = bytes(32)
    db.put(schema.stale_mark_key(stray), schema.height_bytes(3))
    pruning_chain.close()
    report = check_chain(pruning_chain.path, pruning_chain.genesis, verify_signatures=False)
    assert report.problem == (
        f"tree node revive mark {stray.hex()} is of a tree node the ledger does not hold"
    )


def test_a_schema_5_ledger_is_opened_with_one_queue_entry_per_height_and_revive_marks(
    tmp_path: Path,
) -> None:
    chain = LedgerChain(tmp_path / "ledger", keep_heights=20)
    grow(chain, 9)
    db = chain.ledger.db
    for key in [k for k, _ in db.iterator(prefix=schema.STALE_QUEUE)]:
        db.delete(key)
    n1, n2, n3 = (bytes((i,)) * 32 for i in (1, 2, 3))
    # schema 5: a key per removal, a mark on every removed node saying its last removal
    # unless a block wrote it again after that
    for height, node_hash in ((3, n1), (6, n1), (4, n2), (5, n3)):
        db.put(schema.stale_queue_key(height) + node_hash, b"")
    db.put(schema.stale_mark_key(n1), schema.height_bytes(6))  # came back between 3 and 6
    db.put(schema.stale_mark_key(n3), schema.height_bytes(5))  # never came back
    # (n2 has no mark: it came back after 4)
    db.put(schema.META_SCHEMA_VERSION, b"5")
    chain.reopen(keep_heights=20)
    db = chain.ledger.db
    assert db.get(schema.META_SCHEMA_VERSION) == schema.SCHEMA_VERSION == b"6"
    assert list(pruning.queued(db)) == [(3, n1), (4, n2), (5, n3), (6, n1)]
    with db.iterator(prefix=schema.STALE_MARK) as marks:
        revived = {key[1:]: schema.height_from_bytes(raw) for key, raw in marks}
    assert revived == {n1: 6, n2: 9}  # above 3 and 4: those removals never delete them
    chain.close()


def test_a_ledger_that_says_schema_5_but_holds_schema_6_entries_is_refused(
    pruning_chain: LedgerChain,
) -> None:
    grow(pruning_chain, 4)
    pruning_chain.ledger.db.put(schema.META_SCHEMA_VERSION, b"5")  # not what it holds
    with pytest.raises(SparkError) as refused:
        pruning_chain.reopen(keep_heights=3)
    assert refused.value.code is ErrorCode.STORAGE_CORRUPT
    assert "is not a schema 5 stale queue key" in refused.value.message


def test_an_archive_ledger_keeps_every_height(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    grow(chain, 6)
    assert chain.ledger.oldest_state == 0
    assert proved_url(chain, 1) == "https://example.com/v1"
    assert chain.ledger.db.get(schema.META_PRUNING) is None
    with chain.ledger.db.iterator(prefix=schema.STALE_QUEUE) as entries:
        assert next(entries, None) is None  # nothing recorded: no cost without pruning
    # ...so a mark in it is one no block wrote (marks are checked apart only when pruning)
    stray = schema.stale_mark_key(bytes(32))
    chain.ledger.db.put(stray, schema.height_bytes(3))
    chain.close()
    report = check_chain(chain.path, chain.genesis, verify_signatures=False)
    assert report.problem == f"{schema.describe_key(stray)} is stored but no block wrote it"


def test_a_pruned_ledger_verifies_and_a_missing_or_left_over_node_is_reported(
    pruning_chain: LedgerChain,
) -> None:
    grow(pruning_chain, 7)
    pruning_chain.close()
    path, genesis = pruning_chain.path, pruning_chain.genesis
    report = check_chain(path, genesis, verify_signatures=False)
    assert report.ok, report.problem
    assert report.checked == 7

    pruning_chain.reopen()
    db = pruning_chain.ledger.db
    kept_node = root_at(pruning_chain, 5)  # the root of the oldest kept height
    node_bytes = db.get(schema.tree_node_key(kept_node))
    assert node_bytes is not None
    db.delete(schema.tree_node_key(kept_node))
    pruning_chain.close()
    report = check_chain(path, genesis, verify_signatures=False)
    assert not report.ok
    assert report.problem == f"state tree node {kept_node.hex()} is missing from the ledger"

    pruning_chain.reopen()
    db = pruning_chain.ledger.db
    db.put(schema.tree_node_key(kept_node), node_bytes)
    pruned_root = root_at(pruning_chain, 2)
    assert db.get(schema.tree_node_key(pruned_root)) is None
    db.put(schema.tree_node_key(pruned_root), b"left over")
    pruning_chain.close()
    report = check_chain(path, genesis, verify_signatures=False)
    assert not report.ok
    assert report.problem == (
        f"state tree node {pruned_root.hex()} is stored but no block wrote it"
    )


def test_an_archive_ledger_opened_with_pruning_is_swept_to_its_head(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    grow(chain, 5)
    before = len(stored_tree_nodes(chain))
    chain.reopen(keep_heights=2)
    ledger = chain.ledger
    assert ledger.oldest_state == 5
    assert len(stored_tree_nodes(chain)) < before
    assert stored_tree_nodes(chain) == reachable(TreeNodeStore(ledger.db), [root_at(chain, 5)])
    with pytest.raises(SparkError) as refused:
        ledger.resolve_with_proof(WIDGET, 4)
    assert refused.value.code is ErrorCode.HEIGHT_PRUNED
    assert proved_url(chain, 5) == "https://example.com/v5"
    grow(chain, 3)  # 6..8: keeps 7 and 8
    assert chain.ledger.oldest_state == 7
    assert proved_url(chain, 7) == "https://example.com/v7"
    chain.close()
    report = check_chain(chain.path, chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_keep_heights_may_change_between_opens(pruning_chain: LedgerChain) -> None:
    grow(pruning_chain, 6)  # keeps 4..6
    pruning_chain.reopen(keep_heights=10)
    grow(pruning_chain, 4)  # 7..10: nothing more is due, 4 stays the oldest
    assert pruning_chain.ledger.oldest_state == 4
    assert proved_url(pruning_chain, 4) == "https://example.com/v4"
    pruning_chain.reopen(keep_heights=2)
    grow(pruning_chain, 1)  # 11: keeps 10 and 11
    assert pruning_chain.ledger.oldest_state == 10
    pruning_chain.close()
    report = check_chain(pruning_chain.path, pruning_chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_a_schema_3_ledger_is_opened_as_the_current_schema(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    grow(chain, 2)
    chain.ledger.db.put(schema.META_SCHEMA_VERSION, b"3")  # what an older version wrote
    chain.reopen()
    assert chain.ledger.db.get(schema.META_SCHEMA_VERSION) == schema.SCHEMA_VERSION
    assert proved_url(chain, 1) == "https://example.com/v1"
    chain.close()
    report = check_chain(chain.path, chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_the_record_proved_at_a_height_is_the_last_change_at_or_before_it(
    pruning_chain: LedgerChain,
) -> None:
    grow(pruning_chain, 2)
    acme = pruning_chain.signer("acme")
    at = pruning_chain.next_time_ms
    # two changes of one record in one block: the proof shows the block's last
    pruning_chain.commit(
        [
            acme.update(WIDGET, [value(1, "URL", "https://a")], now_ms=at),
            acme.update(WIDGET, [value(1, "URL", "https://b")], now_ms=at),
        ]
    )
    grow(pruning_chain, 1)
    assert proved_url(pruning_chain, 3) == "https://b"
    record_bytes = pruning_chain.ledger.resolve_with_proof(WIDGET, 3)[1].record_bytes
    assert decode_record(record_bytes).updated_height == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), ("[ledger]\nkeep_heights = 0\n", 0), ("[ledger]\nkeep_heights = 500\n", 500)],
)
def test_keep_heights_in_config(text: str, expected: int) -> None:
    assert parse_config(_MINIMAL_CONFIG + text).ledger.keep_heights == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("keep_heights = 1", "keep_heights: must be 0 (keep every height) or at least 2, got 1"),
        ("keep_heights = -3", "keep_heights: must be at least 0, got -3"),
        ('keep_heights = "10"', "keep_heights: must be an integer, got a string"),
        ("keep = 10", "keep: unknown key"),
    ],
)
def test_bad_keep_heights_is_refused_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(SparkError) as refused:
        parse_config(_MINIMAL_CONFIG + "[ledger]\n" + text + "\n")
    assert refused.value.code is ErrorCode.INVALID_CONFIG
    assert f"ledger.{problem}" in refused.value.message


def test_a_ledger_refuses_keep_heights_of_one(tmp_path: Path) -> None:
    with pytest.raises(SparkError) as refused:
        LedgerChain(tmp_path / "ledger", keep_heights=1)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


_MINIMAL_CONFIG = """
[node]
name = "node1"
role = "validator"

[api]
listen = "127.0.0.1:7100"

[p2p]
listen = "127.0.0.1:7200"
"""


def test_a_sweep_cut_short_already_refuses_the_heights_it_was_deleting(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    grow(chain, 4)
    # what the sweep writes before its first deletion; a crash then leaves no `mpruning`
    chain.ledger.db.put(schema.META_OLDEST_STATE, schema.height_bytes(4))
    chain.reopen()  # keep_heights 0: the sweep does not run again...
    with pytest.raises(SparkError) as refused:
        chain.ledger.resolve_with_proof(WIDGET, 2)
    assert refused.value.code is ErrorCode.HEIGHT_PRUNED  # ...but nothing claims height 2
    chain.reopen(keep_heights=2)  # pruning on: the sweep runs to its end
    assert chain.ledger.db.get(schema.META_PRUNING) is not None
    assert stored_tree_nodes(chain) == reachable(
        TreeNodeStore(chain.ledger.db), [root_at(chain, 4)]
    )


def _marked_nodes(chain: LedgerChain) -> dict[bytes, bytes]:
    """The stored tree nodes that a block removed and that only older kept heights hold
    (removals pending, not written again since)."""
    db = chain.ledger.db
    removed: dict[bytes, int] = {}
    for height, node_hash in pruning.queued(db):
        removed[node_hash] = height
    nodes = {}
    for node_hash, height in removed.items():
        mark = db.get(schema.stale_mark_key(node_hash))
        if mark is None or schema.height_from_bytes(mark) <= height:
            nodes[node_hash] = db.get(schema.tree_node_key(node_hash))
    return nodes


def _store_as_schema_5(chain: LedgerChain) -> None:
    """Rewrite the stale bookkeeping as schema 5 stored it: a queue key per (height, node)
    and a mark on every removed node, saying its last removal, unless a block wrote the
    node again after it."""
    db = chain.ledger.db
    last_removal: dict[bytes, int] = {}
    with db.write_batch() as batch:
        for height, node_hash in pruning.queued(db):
            batch.delete(schema.stale_queue_key(height))
            batch.put(schema.stale_queue_key(height) + node_hash, b"")
            last_removal[node_hash] = height
        with db.iterator(prefix=schema.STALE_MARK, include_value=False) as marks:
            for key in marks:
                batch.delete(key)
        for node_hash, height in last_removal.items():
            revived = db.get(schema.stale_mark_key(node_hash))
            if revived is None or schema.height_from_bytes(revived) <= height:
                batch.put(schema.stale_mark_key(node_hash), schema.height_bytes(height))
        batch.put(schema.META_SCHEMA_VERSION, b"5")


def _has_leaf_child(chain: LedgerChain, node: bytes) -> bool:
    if node[:1] == SMT_LEAF:
        return False
    occupied, _, _ = check_inner(node)
    store = TreeNodeStore(chain.ledger.db)
    return any(
        (store.get(child(node, occupied, slot)) or b"")[:1] == SMT_LEAF
        for slot in range(16)
        if occupied >> slot & 1
    )


def test_removed_nodes_are_stored_trimmed_and_older_proofs_stay_the_same(
    pruning_chain: LedgerChain,
) -> None:
    grow(pruning_chain, 2)
    asked = (WIDGET, "88/n-2", "88/n-9")  # present, present, absent
    before = {i: pruning_chain.ledger.resolve_with_proof(i, 2)[1] for i in asked}
    grow(pruning_chain, 1)  # 3 removes the nodes of 2 it rewrote: 1..3 stay provable
    marked = _marked_nodes(pruning_chain)
    assert marked
    for node_hash, node in marked.items():
        assert node == trimmed(node)  # no leaf keys left
        if node[:1] != SMT_LEAF:
            assert sha256(node[: check_inner(node)[2] - 2]) == node_hash  # the same node
    assert any(_has_leaf_child(pruning_chain, node) for node in marked.values())
    for identifier in asked:
        after = pruning_chain.ledger.resolve_with_proof(identifier, 2)[1]
        assert after.SerializeToString() == before[identifier].SerializeToString()
    assert proved_url(pruning_chain, 2) == "https://example.com/v2"
    assert proved_url(pruning_chain, 2, "88/n-9") is None
    pruning_chain.close()
    report = check_chain(pruning_chain.path, pruning_chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_nodes_removed_by_a_block_of_one_change_are_stored_trimmed_too(
    pruning_chain: LedgerChain,
) -> None:
    """A node that sees one change of a block is rewritten by its own path (smt_nodes
    `_update_one`), which must trim what it removes as the general one does."""
    acme = pruning_chain.signer("acme")
    at = pruning_chain.next_time_ms
    pruning_chain.commit([acme.register(f"88/many-{i}", now_ms=at) for i in range(60)])
    for height in range(2, 5):  # one registration per block
        at = pruning_chain.next_time_ms
        pruning_chain.commit([acme.register(f"88/one-{height}", now_ms=at)])
    marked = _marked_nodes(pruning_chain)
    assert any(_has_leaf_child(pruning_chain, node) for node in marked.values())
    assert all(node == trimmed(node) for node in marked.values())


def test_a_schema_4_pruning_ledger_trims_its_removed_nodes_when_opened(
    pruning_chain: LedgerChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what schema 4 stored: removed nodes whole
    with monkeypatch.context() as schema_4:
        schema_4.setattr(BlockUpdate, "trimmed_stale_nodes", lambda self: {})
        grow(pruning_chain, 4)
    whole = [n for n in _marked_nodes(pruning_chain).values() if n != trimmed(n)]
    assert whole
    _store_as_schema_5(pruning_chain)
    pruning_chain.ledger.db.put(schema.META_SCHEMA_VERSION, b"4")
    pruning_chain.reopen(keep_heights=3)
    assert pruning_chain.ledger.db.get(schema.META_SCHEMA_VERSION) == schema.SCHEMA_VERSION
    assert all(n == trimmed(n) for n in _marked_nodes(pruning_chain).values())
    for height in (2, 3, 4):
        assert proved_url(pruning_chain, height) == f"https://example.com/v{height}"
    pruning_chain.close()
    report = check_chain(pruning_chain.path, pruning_chain.genesis, verify_signatures=False)
    assert report.ok, report.problem


def test_a_state_that_comes_back_after_its_nodes_were_trimmed_is_stored_whole(
    pruning_chain: LedgerChain,
) -> None:
    # WIDGET's value goes A -> B -> A: the nodes of A's state are removed (stored trimmed
    # for the kept heights) and then written again by the block that restores A; the tree
    # update, proofs of every kept height and `spark ledger verify` must all still work
    acme = pruning_chain.signer("acme")
    a, b = value(1, "URL", "https://example.com/a"), value(1, "URL", "https://example.com/b")
    pruning_chain.commit([acme.register(WIDGET, [a], now_ms=pruning_chain.next_time_ms)])
    for other in range(3):  # neighbours, so that WIDGET's leaf sits below internal nodes
        pruning_chain.commit([acme.register(f"88/m-{other}", now_ms=pruning_chain.next_time_ms)])
    for url in (b, a, b, a):
        pruning_chain.commit([acme.update(WIDGET, [url], now_ms=pruning_chain.next_time_ms)])
        height = pruning_chain.ledger.height
        for kept in range(height - 2, height + 1):
            assert proved_url(pruning_chain, kept) in {a.data.decode(), b.data.decode()}
    assert proved_url(pruning_chain, pruning_chain.ledger.height) == "https://example.com/a"
    grow(pruning_chain, 4)  # later updates walk the restored nodes
    assert proved_url(pruning_chain, pruning_chain.ledger.height).startswith("https://")
    pruning_chain.close()
    report = check_chain(pruning_chain.path, pruning_chain.genesis, verify_signatures=False)
    assert report.ok, report.problem
