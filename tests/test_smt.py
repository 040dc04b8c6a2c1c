"""The state tree (node/smt.py): roots depend on the key/value set only, and proofs are sound.

Trees are built from keys that share long prefixes as well as random ones, so chains of
single-child nodes, leaves pushed down and lifted back up are all exercised.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import SMT_LEAF, SMT_NODE
from sparkchain.ledger import smt

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE_KEY = bytes.fromhex("5a" * 32)


def _flip_bits(key: bytes, bits: list[int]) -> bytes:
    n = int.from_bytes(key, "big")
    for bit in bits:
        n ^= 1 << (255 - bit)
    return n.to_bytes(32, "big")


# Keys near BASE_KEY (a few late bits flipped: long shared prefixes, deep nodes) or random.
near_keys = st.lists(st.integers(0, 255), min_size=0, max_size=3).map(
    lambda bits: _flip_bits(BASE_KEY, bits)
)
tree_keys = st.one_of(near_keys, st.binary(min_size=32, max_size=32))
values = st.binary(min_size=0, max_size=20)
key_values = st.dictionaries(tree_keys, values, max_size=40)


def build(
    contents: dict[bytes, bytes], store: dict[bytes, bytes] | None = None
) -> tuple[bytes, dict[bytes, bytes]]:
    """A tree holding `contents`, built in one block; returns (root, store)."""
    store = {} if store is None else store
    update = smt.apply(store, smt.EMPTY_ROOT, dict(contents))
    store.update(update.new_nodes)
    return update.root, store


def apply_blocks(
    store: dict[bytes, bytes], root: bytes, blocks: list[dict[bytes, bytes | None]]
) -> bytes:
    for block in blocks:
        update = smt.apply(store, root, block)
        store.update(update.new_nodes)
        root = update.root
    return root


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


# ----- the hash definition, pinned by hand -----------------------------------------------


def _leaf_hash(key: bytes, value: bytes) -> bytes:
    return hashlib.sha256(SMT_LEAF + key + hashlib.sha256(value).digest()).digest()


def test_empty_tree_root_is_all_zeros() -> None:
    assert bytes(32) == smt.EMPTY_ROOT
    assert smt.apply({}, smt.EMPTY_ROOT, {}).root == smt.EMPTY_ROOT


def test_tree_of_one_key_has_its_leaf_hash_as_root() -> None:
    key = bytes(range(32))
    assert build({key: b"v"})[0] == _leaf_hash(key, b"v")


def test_two_keys_in_different_slots_hash_as_one_node_over_both_leaves() -> None:
    low = bytes([0x10]) + bytes(31)  # first nibble 1
    high = bytes([0xF0]) + bytes(31)  # first nibble 15
    occupied = ((1 << 1) | (1 << 15)).to_bytes(2, "big")
    expected = hashlib.sha256(
        SMT_NODE + occupied + _leaf_hash(low, b"a") + _leaf_hash(high, b"b")
    ).digest()
    assert build({low: b"a", high: b"b"})[0] == expected


def test_keys_sharing_a_first_nibble_hang_under_a_single_slot_chain() -> None:
    a = bytes([0x12]) + bytes(31)
    b = bytes([0x13]) + bytes(31)
    inner = hashlib.sha256(
        SMT_NODE
        + ((1 << 2) | (1 << 3)).to_bytes(2, "big")
        + _leaf_hash(a, b"")
        + _leaf_hash(b, b"")
    ).digest()
    expected = hashlib.sha256(SMT_NODE + (1 << 1).to_bytes(2, "big") + inner).digest()
    assert build({a: b"", b: b""})[0] == expected


def test_tree_key_separates_namespaces() -> None:
    assert smt.tree_key(b"r", b"ab") != smt.tree_key(b"ra", b"b")
    assert len(smt.tree_key(b"r", b"x")) == 32


# ----- roots depend on the set only ------------------------------------------------------


@FAST
@given(contents=key_values, seed=st.integers(0, 2**32 - 1))
def test_root_does_not_depend_on_order_or_batching(contents: dict[bytes, bytes], seed: int) -> None:
    rng = random.Random(seed)
    items = list(contents.items())
    rng.shuffle(items)
    blocks: list[dict[bytes, bytes | None]] = []
    while items:
        size = rng.randint(1, 5)
        blocks.append(dict(items[:size]))
        items = items[size:]
    root = apply_blocks({}, smt.EMPTY_ROOT, blocks)
    assert root == build(contents)[0]


@FAST
@given(kept=key_values, removed=key_values, seed=st.integers(0, 2**32 - 1))
def test_deleting_keys_restores_the_root_as_if_they_never_existed(
    kept: dict[bytes, bytes], removed: dict[bytes, bytes], seed: int
) -> None:
    removed = {k: v for k, v in removed.items() if k not in kept}
    root, store = build({**kept, **removed})
    rng = random.Random(seed)
    doomed = list(removed)
    rng.shuffle(doomed)
    half = len(doomed) // 2
    deletions: list[dict[bytes, bytes | None]] = [
        dict.fromkeys(doomed[:half]),
        dict.fromkeys(doomed[half:]),
    ]
    root = apply_blocks(store, root, deletions)
    assert root == build(kept)[0]
    for key in removed:
        assert smt.get(store, root, key) is None


@FAST
@given(before=key_values, block=st.dictionaries(tree_keys, st.one_of(st.none(), values)))
def test_a_mixed_block_matches_a_plain_dict_model(
    before: dict[bytes, bytes], block: dict[bytes, bytes | None]
) -> None:
    root, store = build(before)
    root = apply_blocks(store, root, [block])
    model = dict(before)
    for key, value in block.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value
    assert root == build(model)[0]
    for key in set(before) | set(block):
        expected = model.get(key)
        got = smt.get(store, root, key)
        assert got == (None if expected is None else smt.value_hash(expected))


def test_setting_the_same_values_again_keeps_the_root() -> None:
    contents = {bytes([i]) * 32: bytes([i]) for i in range(20)}
    root, store = build(contents)
    again = smt.apply(store, root, dict(contents))
    assert again.root == root


def test_deleting_an_absent_key_changes_nothing() -> None:
    root, store = build({bytes([1]) * 32: b"x", bytes([2]) * 32: b"y"})
    update = smt.apply(store, root, {bytes([3]) * 32: None})
    assert update.root == root
    assert update.new_nodes == {}


# ----- proofs ----------------------------------------------------------------------------


@FAST
@given(contents=key_values, probes=st.lists(tree_keys, max_size=10))
def test_present_keys_prove_their_value_and_absent_keys_their_absence(
    contents: dict[bytes, bytes], probes: list[bytes]
) -> None:
    root, store = build(contents)
    for key, value in contents.items():
        proof = smt.prove(store, root, key)
        assert smt.verify_proof(root, key, value, proof)
        assert not smt.verify_proof(root, key, value + b"!", proof)
        assert not smt.verify_proof(root, key, None, proof)
    for key in probes:
        if key in contents:
            continue
        proof = smt.prove(store, root, key)
        assert smt.verify_proof(root, key, None, proof)
        assert not smt.verify_proof(root, key, b"", proof)


@FAST
@given(contents=key_values, probe=tree_keys, data=st.data())
def test_any_flipped_bit_in_a_proof_or_root_fails(
    contents: dict[bytes, bytes], probe: bytes, data: st.DataObject
) -> None:
    """Covers tampered siblings, occupied maps, kinds, depths and the other leaf's key."""
    root, store = build(contents)
    value = contents.get(probe)
    proof = smt.prove(store, root, probe)
    assert smt.verify_proof(root, probe, value, proof)
    bit = data.draw(st.integers(0, len(proof) * 8 - 1), label="proof bit")
    assert not smt.verify_proof(root, probe, value, flip_bit(proof, bit))
    root_bit = data.draw(st.integers(0, 255), label="root bit")
    assert not smt.verify_proof(flip_bit(root, root_bit), probe, value, proof)


@FAST
@given(contents=key_values, probe=tree_keys, cut=st.integers(1, 64), extra=st.binary(max_size=40))
def test_truncated_or_extended_proofs_fail(
    contents: dict[bytes, bytes], probe: bytes, cut: int, extra: bytes
) -> None:
    root, store = build(contents)
    value = contents.get(probe)
    proof = smt.prove(store, root, probe)
    assert not smt.verify_proof(root, probe, value, proof[: max(0, len(proof) - cut)])
    if extra:
        assert not smt.verify_proof(root, probe, value, proof + extra)


@FAST
@given(contents=key_values, data=st.data())
def test_a_proof_for_one_key_does_not_verify_for_another(
    contents: dict[bytes, bytes], data: st.DataObject
) -> None:
    if len(contents) < 2:
        return
    root, store = build(contents)
    key, other = data.draw(st.permutations(list(contents)), label="keys")[:2]
    proof = smt.prove(store, root, key)
    assert not smt.verify_proof(root, other, contents[key], proof)
    assert not smt.verify_proof(root, other, None, proof)


def test_a_proof_from_an_older_root_fails_against_the_new_root() -> None:
    key = bytes([7]) * 32
    root, store = build({key: b"old", bytes([8]) * 32: b"other"})
    old_proof = smt.prove(store, root, key)
    update = smt.apply(store, root, {key: b"new"})
    store.update(update.new_nodes)
    assert not smt.verify_proof(update.root, key, b"old", old_proof)
    assert smt.verify_proof(update.root, key, b"new", smt.prove(store, update.root, key))


@pytest.mark.parametrize("key", [bytes(32), bytes([0xFF]) * 32, bytes(range(32))])
def test_the_empty_tree_proves_every_key_absent(key: bytes) -> None:
    proof = smt.prove({}, smt.EMPTY_ROOT, key)
    assert smt.verify_proof(smt.EMPTY_ROOT, key, None, proof)
    assert not smt.verify_proof(smt.EMPTY_ROOT, key, b"", proof)
    assert not smt.verify_proof(bytes([1]) * 32, key, None, proof)


def test_keys_differing_only_in_the_last_bit_give_a_64_deep_proof() -> None:
    a = bytes(31) + b"\x00"
    b = bytes(31) + b"\x01"
    root, store = build({a: b"a", b: b"b"})
    proof = smt.prove(store, root, a)
    assert proof[1] == 64
    assert smt.verify_proof(root, a, b"a", proof)
    absent = bytes(31) + b"\x02"
    assert smt.verify_proof(root, absent, None, smt.prove(store, root, absent))


@settings(max_examples=300, deadline=None)
@given(
    root=st.binary(), key=st.binary(), value=st.one_of(st.none(), st.binary()), proof=st.binary()
)
def test_verifying_arbitrary_bytes_never_raises(
    root: bytes, key: bytes, value: bytes | None, proof: bytes
) -> None:
    assert smt.verify_proof(root, key, value, proof) in (True, False)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), kind=st.integers(0, 3), depth=st.integers(0, 70))
def test_verifying_proof_shaped_garbage_never_raises(body: bytes, kind: int, depth: int) -> None:
    proof = bytes((kind, depth)) + body
    for value in (None, b"v"):
        assert smt.verify_proof(BASE_KEY, BASE_KEY, value, proof) in (True, False)


# ----- cache and store errors ------------------------------------------------------------


@FAST
@given(contents=key_values, block=st.dictionaries(tree_keys, st.one_of(st.none(), values)))
def test_a_small_cache_changes_no_answer(
    contents: dict[bytes, bytes], block: dict[bytes, bytes | None]
) -> None:
    cache = smt.NodeCache(max_nodes=3, max_depth=2)
    root, store = build(contents)
    with_cache = smt.apply(store, root, block, cache)
    without = smt.apply(store, root, block)
    assert with_cache.root == without.root
    assert with_cache.new_nodes == without.new_nodes
    store.update(with_cache.new_nodes)
    assert len(cache) <= 3
    for key in list(contents)[:5]:
        assert smt.prove(store, with_cache.root, key, cache) == smt.prove(
            store, with_cache.root, key
        )


def test_a_missing_node_is_reported_as_corrupt_storage() -> None:
    contents = {bytes([i]) * 32: b"v" for i in range(40)}
    root, store = build(contents)
    store.pop(root)
    for call in (
        lambda: smt.apply(store, root, {bytes([99]) * 32: b"x"}),
        lambda: smt.prove(store, root, bytes([1]) * 32),
        lambda: smt.get(store, root, bytes([1]) * 32),
    ):
        with pytest.raises(SparkError) as caught:
            call()
        assert caught.value.code == ErrorCode.STORAGE_CORRUPT


def test_a_malformed_node_is_reported_as_corrupt_storage() -> None:
    root, store = build({bytes([i]) * 32: b"v" for i in range(40)})
    store[root] = store[root][:-3]
    with pytest.raises(SparkError) as caught:
        smt.prove(store, root, bytes([1]) * 32)
    assert caught.value.code == ErrorCode.STORAGE_CORRUPT


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_keys_and_roots_must_be_32_bytes(bad: bytes) -> None:
    with pytest.raises(SparkError) as caught:
        smt.apply({}, smt.EMPTY_ROOT, {bad: b"v"})
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(SparkError):
        smt.prove({}, bad, bytes(32))
    with pytest.raises(SparkError):
        smt.get({}, smt.EMPTY_ROOT, bad)
    assert not smt.verify_proof(bad, bytes(32), None, b"\x01\x00")


def test_warming_the_cache_loads_the_top_levels_and_changes_no_answer() -> None:
    rng = random.Random(11)
    contents = {rng.randbytes(32): rng.randbytes(4) for _ in range(3000)}
    root, store = build(contents)
    cache = smt.NodeCache(max_depth=2)
    loaded = smt.warm_cache(store, root, cache)
    assert loaded == len(cache) == 17  # the root and its 16 children
    counting = _CountingStore(store)
    for key in list(contents)[:50]:
        assert smt.prove(counting, root, key, cache) == smt.prove(store, root, key)
    # below the cache only: a node at depth 2 for every proof, sometimes one at depth 3,
    # and never a leaf (parents know their leaves' keys)
    assert 50 <= counting.reads < 100
    assert counting.leaf_reads == 0
    assert smt.warm_cache({}, smt.EMPTY_ROOT, cache) == 0


class _CountingStore:
    def __init__(self, store: dict[bytes, bytes]) -> None:
        self._store = store
        self.reads = 0
        self.leaf_reads = 0

    def get(self, node_hash: bytes) -> bytes | None:
        self.reads += 1
        node = self._store.get(node_hash)
        if node is not None and node[:1] == SMT_LEAF:
            self.leaf_reads += 1
        return node


def _reachable(store: dict[bytes, bytes], root: bytes) -> set[bytes]:
    """Every node hash of the tree under `root` (leaves included)."""
    if root == smt.EMPTY_ROOT:
        return set()
    seen, todo = set(), [root]
    while todo:
        node_hash = todo.pop()
        seen.add(node_hash)
        encoded = store[node_hash]
        if encoded[:1] == SMT_NODE:
            occupied = int.from_bytes(encoded[1:3], "big")
            todo += [encoded[3 + 32 * i : 35 + 32 * i] for i in range(occupied.bit_count())]
    return seen


@FAST
@given(
    before=key_values,
    changes=st.lists(st.tuples(tree_keys, st.one_of(st.none(), values)), max_size=12),
)
def test_one_change_per_block_writes_and_drops_exactly_the_changed_nodes(
    before: dict[bytes, bytes], changes: list[tuple[bytes, bytes | None]]
) -> None:
    """Blocks of one change (the path most nodes of a big block take): each gives the
    model's root, stores every node its tree gained and lists as stale exactly the nodes
    its tree lost, whether the key is new, replaced, deleted or absent."""
    root, store = build(before)
    model = dict(before)
    for key, value in changes:
        update = smt.apply(store, root, {key: value})
        store.update(update.new_nodes)
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value
        assert update.root == build(model)[0]
        old, new = _reachable(store, root), _reachable(store, update.root)
        assert new - old <= set(update.new_nodes)
        assert set(update.stale_nodes) == old - new
        root = update.root
