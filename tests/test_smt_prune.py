"""Pruning the state tree (ledger/smt_prune.py): after every block, the nodes stored are
exactly those the last K roots hold (no leak, no over-delete), and every proof of those
roots still verifies.

Keys and values come from small pools, so blocks often put a subtree back to content it
held before: nodes that a block removed come back, which is where a pruner over a
content-addressed store goes wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger import smt
from sparkchain.ledger.smt_prune import check_keep_heights, plan_commit, reachable

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_NEAR = bytes.fromhex("5a" * 32)
KEY_POOL = [
    *(_NEAR[:31] + bytes((last,)) for last in (0x00, 0x01, 0x10, 0x11)),  # deep shared paths
    *(bytes((first,)) + _NEAR[1:] for first in (0x00, 0x10, 0xF0)),
    *(bytes((n,)) * 32 for n in (0x21, 0x77, 0xA3, 0xC4)),
]
VALUE_POOL = [b"a", b"b", b"c"]

block_changes = st.dictionaries(
    st.sampled_from(KEY_POOL), st.one_of(st.none(), st.sampled_from(VALUE_POOL)), max_size=6
)


@dataclass
class PruningStore:
    """A pruning ledger's tree storage in dicts: what node/pruning.py keeps in LevelDB."""

    keep_heights: int
    nodes: dict[bytes, bytes] = field(default_factory=dict)
    queue: set[tuple[int, bytes]] = field(default_factory=set)
    marks: dict[bytes, int] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=lambda: {0: smt.EMPTY_ROOT})
    oldest: int = 0

    def revive_mark(self, node_hash: bytes) -> int | None:
        return self.marks.get(node_hash)

    def is_stored(self, node_hash: bytes) -> bool:
        return node_hash in self.nodes

    def due(self, through_height: int) -> list[tuple[int, bytes]]:
        return sorted(entry for entry in self.queue if entry[0] <= through_height)

    def commit(self, changes: dict[bytes, bytes | None]) -> None:
        height = max(self.roots) + 1
        update = smt.apply(self.nodes, self.roots[height - 1], changes)
        step = plan_commit(
            self,
            height,
            update.new_nodes,
            update.stale_nodes,
            keep_heights=self.keep_heights,
            oldest_provable=self.oldest,
        )
        for node_hash in step.delete_nodes:
            del self.nodes[node_hash]
        self.queue.difference_update(step.delete_queue)
        for node_hash in step.delete_marks:
            self.marks.pop(node_hash, None)
        self.nodes.update(update.new_nodes)
        self.queue.update(step.put_queue)
        self.marks.update((node_hash, height) for node_hash in step.put_marks)
        self.roots[height] = update.root
        self.oldest = step.oldest_provable

    def held_after(self, height: int) -> set[bytes]:
        """The nodes that some tree of a height above `height` holds."""
        return reachable(self.nodes, [r for h, r in self.roots.items() if h > height])

    def kept_roots(self) -> list[bytes]:
        return [root for height, root in self.roots.items() if height >= self.oldest]


def assert_marks_tell_which_removed_nodes_came_back(store: PruningStore) -> None:
    """What `spark ledger verify` checks (node/chain_check.py): a pending removal's node
    is stored, and its revive mark is above the removal exactly when a later tree holds
    it; every mark is of a stored node."""
    for removed_at, node_hash in store.queue:
        assert node_hash in store.nodes
        came_back = node_hash in store.held_after(removed_at)
        assert (store.marks.get(node_hash, 0) > removed_at) == came_back
    assert set(store.marks) <= set(store.nodes)


@SETTINGS
@given(st.integers(2, 4), st.lists(block_changes, min_size=1, max_size=14))
def test_pruned_store_holds_exactly_the_nodes_of_the_last_k_roots(
    keep_heights: int, blocks: list[dict[bytes, bytes | None]]
) -> None:
    store = PruningStore(keep_heights)
    contents: dict[int, dict[bytes, bytes]] = {0: {}}
    current: dict[bytes, bytes] = {}
    for changes in blocks:
        store.commit(changes)
        for key, value in changes.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        height = max(store.roots)
        contents[height] = dict(current)
        assert store.oldest == max(0, height - keep_heights + 1)
        assert set(store.nodes) == reachable(store.nodes, store.kept_roots())
        assert_marks_tell_which_removed_nodes_came_back(store)
        for kept in range(store.oldest, height + 1):
            root = store.roots[kept]
            for key in KEY_POOL:
                proof = smt.prove(store.nodes, root, key)
                assert smt.verify_proof(root, key, contents[kept].get(key), proof)


@SETTINGS
@given(st.lists(block_changes, min_size=1, max_size=10))
def test_keeping_every_height_deletes_nothing_but_still_records_removals(
    blocks: list[dict[bytes, bytes | None]],
) -> None:
    store = PruningStore(keep_heights=0)
    for changes in blocks:
        store.commit(changes)
    assert store.oldest == 0
    assert set(store.nodes) == reachable(store.nodes, store.roots.values())
    removals = {
        (height, node_hash)
        for height in range(1, max(store.roots) + 1)
        for node_hash in reachable(store.nodes, [store.roots[height - 1]])
        - reachable(store.nodes, [store.roots[height]])
    }
    assert store.queue == removals  # every removal of every height, none dropped
    assert_marks_tell_which_removed_nodes_came_back(store)


def test_a_subtree_that_comes_back_is_not_pruned_with_its_old_removal() -> None:
    store = PruningStore(keep_heights=2)
    one, two, other = KEY_POOL[0], KEY_POOL[1], KEY_POOL[8]
    store.commit({one: b"a", two: b"a", other: b"a"})  # 1
    store.commit({two: None})  # 2: the nodes over `one` and `two` go stale at 2
    removed_at_2 = reachable(store.nodes, [store.roots[1]]) - reachable(
        store.nodes, [store.roots[2]]
    )
    store.commit({two: b"a"})  # 3: ...and come back, identical
    store.commit({other: b"b"})  # 4: the entries of height 2 are due; those nodes are live
    store.commit({other: b"c"})  # 5
    assert removed_at_2 & set(store.nodes)
    assert set(store.nodes) == reachable(store.nodes, store.kept_roots())
    root = store.roots[5]
    for key, value in ((one, b"a"), (two, b"a"), (other, b"c")):
        assert smt.verify_proof(root, key, value, smt.prove(store.nodes, root, key))


def test_a_pruned_root_cannot_be_read_any_more() -> None:
    store = PruningStore(keep_heights=2)
    key = KEY_POOL[0]
    for value in (b"a", b"b", b"c"):
        store.commit({key: value, KEY_POOL[1]: value})
    with pytest.raises(SparkError) as raised:
        smt.prove(store.nodes, store.roots[1], key)
    assert raised.value.code is ErrorCode.STORAGE_CORRUPT


@pytest.mark.parametrize("bad", [1, -1])
def test_keep_heights_below_two_other_than_zero_is_refused(bad: int) -> None:
    with pytest.raises(SparkError) as raised:
        check_keep_heights(bad)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert "at least 2" in raised.value.message
