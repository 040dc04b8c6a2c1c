"""Pruning the state tree to its last K roots: which stored nodes may go, and when.

The tree stores every node under its hash (ledger/smt_nodes.py), so one stored node serves
every version of the tree that holds it, and a node that a block removed can come back
later (a subtree returning to content it held before). A node is therefore deleted only
when no kept version holds it, which two bookkeeping entries tell without reading trees:

    stale queue   height s -> node hashes  the block at s removed these nodes from the tree
    revive mark   node hash -> r           the last height that wrote the node while it was
                                           still stored (it came back, or was re-created
                                           as it was)

With K kept heights, after the commit of height h the states of heights h-K+1 .. h stay
provable. A node removed at s was last held by the tree of s-1, so its queue entry is due
when s <= h-K+1, and the node goes unless a block after s wrote it again: a revive mark
above s means it is live (or a later entry decides), no mark or one at or below s means no
kept tree holds it, and the node and its mark go. Every due entry is dropped. A node that
comes back after it was deleted is simply new. Marks exist only for nodes that came back,
rare in a ledger of registrations, so the bookkeeping costs the queue alone (a mark per
removed node, as schema 5 kept, was about 10 bytes per identifier at 1M, uncompressed).

`plan_commit` decides this for one block from the committed index (a `StaleIndex`); the
node applies the result in the block's own write batch (node/pruning.py), in the order
`PruneStep` gives, so that a crash never leaves half a prune and a node the block writes
again is never lost. `reachable` is the plain definition the rest must agree with (tests
and the one-time sweep of a ledger that starts pruning use it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import SMT_LEAF
from sparkchain.ledger.smt_nodes import EMPTY_HASH, NodeStore, check_inner, child

# the fewest heights a pruning ledger keeps: the state just replaced stays readable while a
# reader that started on it finishes, and a proposal for the next height still executes
MIN_KEEP_HEIGHTS = 2


class StaleIndex(Protocol):
    """The committed stale queue, revive marks and tree (node/pruning.py: LevelDB)."""

    def revive_mark(self, node_hash: bytes, /) -> int | None:
        """The last height that wrote the node while it was stored, or None."""
        ...

    def is_stored(self, node_hash: bytes, /) -> bool:
        """Whether the tree's storage holds the node (before this commit)."""
        ...

    def due(self, through_height: int, /) -> Iterable[tuple[int, bytes]]:
        """The queue entries (height, node hash) with height <= `through_height`."""
        ...


@dataclass(slots=True)
class PruneStep:
    """What one commit changes in the tree's storage beyond writing its new nodes.

    Apply in this order, in the block's batch: the deletions (`delete_nodes`,
    `delete_queue`, `delete_marks`), then the block's new nodes, then `put_queue` and
    `put_marks` (each marked with the block's height). A node both pruned and written again
    by the block is thus kept, and marked.
    """

    oldest_provable: int
    delete_nodes: list[bytes] = field(default_factory=list)
    delete_queue: list[tuple[int, bytes]] = field(default_factory=list)
    delete_marks: list[bytes] = field(default_factory=list)
    put_queue: list[tuple[int, bytes]] = field(default_factory=list)
    put_marks: list[bytes] = field(default_factory=list)


def check_keep_heights(keep_heights: int) -> int:
    """`keep_heights` if it is 0 (keep every height) or at least MIN_KEEP_HEIGHTS."""
    if keep_heights != 0 and keep_heights < MIN_KEEP_HEIGHTS:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"keep_heights must be 0 (keep every height) or at least {MIN_KEEP_HEIGHTS}, "
            f"got {keep_heights}",
        )
    return keep_heights


def oldest_provable_after(height: int, keep_heights: int, oldest_provable: int) -> int:
    """The oldest height whose state is still provable after committing `height`."""
    if keep_heights == 0:
        return oldest_provable
    return max(oldest_provable, height - keep_heights + 1)


def plan_commit(
    index: StaleIndex,
    height: int,
    new_nodes: Iterable[bytes],
    stale_nodes: Iterable[bytes],
    *,
    keep_heights: int,
    oldest_provable: int,
) -> PruneStep:
    """The bookkeeping and deletions of committing `height`, whose tree update wrote
    `new_nodes` and removed `stale_nodes` (smt.TreeUpdate). With keep_heights 0 nothing is
    deleted, but removals are still recorded, so pruning can start later without a sweep."""
    check_keep_heights(keep_heights)
    oldest = oldest_provable_after(height, keep_heights, oldest_provable)
    step = PruneStep(oldest)
    if oldest > oldest_provable:
        revived = index.revive_mark
        for removed_at, node_hash in index.due(oldest):
            step.delete_queue.append((removed_at, node_hash))
            mark = revived(node_hash)
            if mark is None or mark <= removed_at:
                step.delete_nodes.append(node_hash)
                if mark is not None:
                    step.delete_marks.append(node_hash)
    # written while still stored: a pending removal of it must not delete it (a lookup
    # per new node; the bloom filter answers the usual miss of a node never seen)
    step.put_marks.extend(filter(index.is_stored, new_nodes))
    step.put_queue.extend((height, node_hash) for node_hash in stale_nodes)
    return step


def reachable(
    store: NodeStore, roots: Iterable[bytes], seen: set[bytes] | None = None
) -> set[bytes]:
    """Every stored node that the trees under `roots` hold (their hashes), added to `seen`
    when given (its subtrees are not walked again)."""
    if seen is None:
        seen = set()
    for root in roots:
        if root != EMPTY_HASH:
            seen.update(_walk(store, root, seen))
    return seen


def _walk(store: NodeStore, root: bytes, seen: set[bytes]) -> Iterator[bytes]:
    """The nodes under `root` not in `seen` (a subtree already seen is not walked again)."""
    pending = [root]
    while pending:
        node_hash = pending.pop()
        if node_hash in seen:
            continue
        yield node_hash
        encoded = store.get(node_hash)
        if encoded is None:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT, f"state tree node {node_hash.hex()} is missing"
            )
        if encoded[:1] == SMT_LEAF:
            continue
        try:
            occupied, _, _ = check_inner(encoded)
        except (ValueError, IndexError) as error:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT, f"state tree node {node_hash.hex()}: {error}"
            ) from None
        pending.extend(child(encoded, occupied, slot) for slot in range(16) if occupied >> slot & 1)
