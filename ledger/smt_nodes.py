"""Stored nodes of the 16-ary state tree, and the one-pass update of a block over them.

Canonical shape (the root is a function of the key/value set only): the subtree under a
nibble-aligned path holding no key is empty, holding one key is that key's leaf (lifted
as high as it goes: path compression), holding two or more is an internal node with a
slot per next nibble. Leaves are stored on their own, under their hash, so an internal node
is rehashed without reading its leaf children.

Encodings (the first byte is the domain tag of identifiers/tags.py):
    leaf      SMT_LEAF || key (32) || value hash (32)
              hash = SHA-256(encoding)
    internal  SMT_NODE || occupied (2) || child hash of every occupied slot (32 each)
              || leaves (2) || key of every leaf child (32 each)
              hash = SHA-256(SMT_NODE || occupied || child hashes): the trailer is not hashed
    `occupied` and `leaves` are big-endian 16-bit maps, bit s (value 1 << s) = slot s;
    `leaves` marks the children that are leaves. The trailer only saves reads: a child's
    own domain tag already says what it is, and its hash commits to its key. With the leaf
    keys at hand, inserting next to a leaf and proving a present key read no leaf.
    trimmed   an internal node with `leaves` 0 and no keys (`trimmed`): how a ledger that
              records removals (ledger/smt_prune.py) stores a node once the head's tree no
              longer holds it, so that only proofs of older kept heights read it (they
              find a leaf child by its tag, one read more); same hash. A block that
              writes the node again stores it whole.
Updating a node splices 32-byte hashes and keys into its bytes: no per-slot objects.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Protocol

from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.identifiers.limits import DEFAULT_TREE_CACHE_NODES
from sparkchain.identifiers.tags import SMT_LEAF, SMT_NODE

EMPTY_HASH = bytes(32)
NIBBLES = 64  # a 256-bit key is 64 slots deep at most
LEAF_BYTES = 65

# kinds of a subtree
EMPTY = 0
LEAF = 1
INNER = 2


class NodeStore(Protocol):
    def get(self, node_hash: bytes, /) -> bytes | None:
        """The encoded node stored under its hash, or None."""
        ...


# The cache holds the top 5 levels: at most 1 + 16 + 256 + 4096 + 65536 = 69,905 nodes
# whatever the tree's size: ~36 MB of node bytes at 1M keys (~50 MB of RSS with Python's
# overhead). With it, a block update or a proof at 1M keys reads ~0.25 nodes per key from
# LevelDB instead of ~1.25 with 4 levels (~2 MB); bench/smt_bench.py measures both.
CACHE_MAX_DEPTH = 5
CACHE_MAX_NODES = DEFAULT_TREE_CACHE_NODES  # config.toml [storage] tree_cache_nodes


class NodeCache:
    """Encoded internal nodes near the root, by hash; bounded; shared across blocks and threads.

    Nodes are content-addressed and never change, so an entry can only be stale (an old
    version that a later block rewrote), never wrong. `apply` drops the old version of each
    node it rewrites, so the cache holds about the top `max_depth` levels of the latest
    tree; the node-count bound matters when proposals are executed and then discarded.
    One cache can serve the ledger's writer and its readers (gets take no lock).
    """

    def __init__(self, max_nodes: int = CACHE_MAX_NODES, max_depth: int = CACHE_MAX_DEPTH) -> None:
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self._nodes: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._nodes)

    def payload_bytes(self) -> int:
        return sum(map(len, list(self._nodes.values())))

    def get(self, node_hash: bytes) -> bytes | None:
        return self._nodes.get(node_hash)

    def put(self, node_hash: bytes, encoded: bytes) -> None:
        with self._lock:
            nodes = self._nodes
            while len(nodes) >= self.max_nodes:
                del nodes[next(iter(nodes))]  # oldest first
            nodes[node_hash] = encoded

    def fill(self, loaded: list[tuple[bytes, bytes]]) -> None:
        """Put many nodes at once, the first of `loaded` kept when they are more than fit."""
        with self._lock:
            nodes = self._nodes
            nodes.update(loaded[: self.max_nodes])
            while len(nodes) > self.max_nodes:
                del nodes[next(iter(nodes))]  # oldest first

    def drop(self, node_hash: bytes) -> None:
        with self._lock:
            self._nodes.pop(node_hash, None)

    def replace(self, old: list[bytes], new: list[tuple[bytes, bytes]]) -> None:
        """Drop the `old` versions, then put the `new` nodes (one block's rewrites)."""
        with self._lock:
            nodes = self._nodes
            for node_hash in old:
                nodes.pop(node_hash, None)
            max_nodes = self.max_nodes
            if len(nodes) + len(new) <= max_nodes:  # the usual case: one C-level update
                nodes.update(new)
                return
            for node_hash, encoded in new:
                while len(nodes) >= max_nodes:
                    del nodes[next(iter(nodes))]  # oldest first
                nodes[node_hash] = encoded


def nibble(key: bytes, depth: int) -> int:
    """The slot of `key` in the node at `depth` (0 = root): its depth-th 4-bit digit."""
    byte = key[depth >> 1]
    return byte & 15 if depth & 1 else byte >> 4


def check_inner(encoded: bytes) -> tuple[int, int, int]:
    """(occupied, leaves, offset of the leaf keys) of an internal node; ValueError if it
    is malformed."""
    if encoded[:1] != SMT_NODE or len(encoded) < 5:
        raise ValueError("not an internal node")
    occupied = int.from_bytes(encoded[1:3], "big")
    keys_at = 5 + 32 * occupied.bit_count()
    leaves = int.from_bytes(encoded[keys_at - 2 : keys_at], "big")
    if len(encoded) != keys_at + 32 * leaves.bit_count() or leaves & ~occupied:
        raise ValueError("internal node length or leaf map does not match its occupied map")
    return occupied, leaves, keys_at


def child(encoded: bytes, occupied: int, slot: int) -> bytes:
    """The hash in an occupied slot."""
    at = 3 + 32 * (occupied & ((1 << slot) - 1)).bit_count()
    return encoded[at : at + 32]


def child_leaf_key(encoded: bytes, leaves: int, keys_at: int, slot: int) -> bytes:
    """The key of the leaf in a slot that holds one."""
    at = keys_at + 32 * (leaves & ((1 << slot) - 1)).bit_count()
    return encoded[at : at + 32]


def leaf_key_value(encoded: bytes) -> tuple[bytes, bytes]:
    if len(encoded) != LEAF_BYTES or encoded[:1] != SMT_LEAF:
        raise ValueError("not a leaf")
    return encoded[1:33], encoded[33:65]


# One change of a block: (key, value hash or None = delete, the leaf hash when this is an
# existing leaf pushed down unchanged, in which case the value hash is not used).
Item = tuple[bytes, "bytes | None", "bytes | None"]
# A subtree after the update: (hash or None when empty, kind, the key when it is a leaf).
Subtree = tuple["bytes | None", int, "bytes | None"]
_EMPTY_SUBTREE: Subtree = (None, EMPTY, None)


class TreeReader:
    """Reads nodes through the cache; counts store reads (the benchmark reports them)."""

    def __init__(self, store: NodeStore, cache: NodeCache | None) -> None:
        self.store = store
        self.cache = cache
        self.nodes_read = 0

    def node(self, node_hash: bytes, depth: int) -> bytes:
        """An encoded node (leaf or internal); LookupError if the store lacks it."""
        cache = self.cache
        if cache is not None:
            encoded = cache.get(node_hash)
            if encoded is not None:
                return encoded
        encoded = self.store.get(node_hash)
        self.nodes_read += 1
        if encoded is None:
            raise LookupError(node_hash)
        if cache is not None and depth < cache.max_depth and encoded[:1] == SMT_NODE:
            cache.put(node_hash, encoded)
        return encoded

    def leaf(self, leaf_hash: bytes) -> tuple[bytes, bytes]:
        """(key, value hash) of a stored leaf."""
        encoded = self.store.get(leaf_hash)
        self.nodes_read += 1
        if encoded is None:
            raise LookupError(leaf_hash)
        return leaf_key_value(encoded)


class BlockUpdate(TreeReader):
    """One pass of a block's sorted changes down the tree, collecting the new nodes.

    The changes stay in one sorted list and a subtree's share of them is an index range
    of it (no list per node); the cache is updated once, at the end of the pass.
    """

    def __init__(
        self, store: NodeStore, cache: NodeCache | None, hash_fn: HashFunction = sha256
    ) -> None:
        super().__init__(store, cache)
        self._hash = hash_fn  # the chain's hash (identifiers/hashing.py)
        self.new_nodes: dict[bytes, bytes] = {}
        # nodes of the old tree this pass replaced or removed (a node it re-creates
        # identically is also in new_nodes: `stale_nodes` leaves those out)
        self.replaced: list[bytes] = []
        # the replaced internal nodes that had leaf keys, trimmed (`trimmed`)
        self._trimmed: dict[bytes, bytes] = {}
        self._items: list[Item] = []
        self._keys: list[bytes] = []
        self._cache_depth = -1 if cache is None else cache.max_depth
        # the cache's dict itself: a plain dict get per visited node, no method call
        self._cached: dict[bytes, bytes] = {} if cache is None else cache._nodes
        self._uncached: list[bytes] = []  # old versions of rewritten cached nodes
        self._to_cache: list[tuple[bytes, bytes]] = []

    def apply_to_root(self, root: bytes, items: list[Item]) -> bytes | None:
        """The new root after `items` (sorted by key); None for the empty tree."""
        self._items = items
        self._keys = [item[0] for item in items]
        if root == EMPTY_HASH:
            new_root = self._fresh(0, 0, len(items))[0]
        else:
            encoded = self.node(root, 0)
            if encoded[:1] == SMT_LEAF:  # a tree of one key
                leaf_key = leaf_key_value(encoded)[0]
                new_root = self._update_leaf(root, leaf_key, 0, 0, len(items))[0]
            else:
                new_root = self._update_inner(root, 0, 0, len(items))[0]
        cache = self.cache
        if cache is not None and (self._uncached or self._to_cache):
            cache.replace(self._uncached, self._to_cache)
        return new_root

    def stale_nodes(self) -> list[bytes]:
        """The nodes of the old tree that the new one no longer holds."""
        new_nodes = self.new_nodes
        return [node_hash for node_hash in self.replaced if node_hash not in new_nodes]

    def trimmed_stale_nodes(self) -> dict[bytes, bytes]:
        """The stale internal nodes that hold leaf keys, each trimmed (`trimmed`)."""
        new_nodes = self.new_nodes
        return {h: node for h, node in self._trimmed.items() if h not in new_nodes}

    def _fresh(self, depth: int, lo: int, hi: int) -> Subtree:
        """An empty slot at `depth` after items[lo:hi]."""
        inserts = [item for item in self._items[lo:hi] if item[1] is not None]
        if not inserts:
            return _EMPTY_SUBTREE
        return self.build(depth, inserts)

    def _update_leaf(
        self, leaf_hash: bytes, leaf_key: bytes, depth: int, lo: int, hi: int
    ) -> Subtree:
        """A slot at `depth` holding the leaf of `leaf_key` after items[lo:hi]."""
        items = self._items
        if hi - lo == 1:
            key, vh, _ = items[lo]
            if key == leaf_key:
                self.replaced.append(leaf_hash)
                if vh is None:
                    return _EMPTY_SUBTREE
                return self.build(depth, [items[lo]])
            if vh is None:  # deleting an absent key
                return leaf_hash, LEAF, leaf_key
            new_leaf = self._leaf(key, vh)
            if key < leaf_key:
                return self._pair(depth, key, new_leaf, leaf_key, leaf_hash)
            return self._pair(depth, leaf_key, leaf_hash, key, new_leaf)
        merged = _with_leaf(leaf_hash, leaf_key, items[lo:hi])
        if len(merged) == hi - lo:  # an item replaces or deletes the leaf
            self.replaced.append(leaf_hash)
        inserts = [item for item in merged if item[1] is not None]
        if not inserts:
            return _EMPTY_SUBTREE
        return self.build(depth, inserts)

    def build(self, depth: int, inserts: list[Item]) -> Subtree:
        """A fresh subtree holding exactly `inserts` (non-empty, sorted, distinct keys)."""
        if len(inserts) == 1:
            key, vh, known = inserts[0]
            if known is not None:
                return known, LEAF, key
            assert vh is not None
            return self._leaf(key, vh), LEAF, key
        if len(inserts) == 2:
            (key, vh, known), (other, other_vh, other_known) = inserts
            if known is None:
                assert vh is not None
                known = self._leaf(key, vh)
            if other_known is None:
                assert other_vh is not None
                other_known = self._leaf(other, other_vh)
            return self._pair(depth, key, known, other, other_known)
        occupied = leaves = 0
        children: list[bytes] = []
        keys: list[bytes] = []
        for slot, group in _groups(depth, inserts):
            h, kind, leaf_key = self.build(depth + 1, group)
            assert h is not None
            occupied |= 1 << slot
            children.append(h)
            if kind == LEAF:
                assert leaf_key is not None
                leaves |= 1 << slot
                keys.append(leaf_key)
        node_hash = self._store_inner(
            occupied, b"".join(children), leaves, b"".join(keys), depth, None
        )
        return node_hash, INNER, None

    def _leaf(self, key: bytes, vh: bytes) -> bytes:
        encoded = SMT_LEAF + key + vh
        leaf_hash = self._hash(encoded)
        self.new_nodes[leaf_hash] = encoded
        return leaf_hash

    def _pair(
        self, depth: int, low: bytes, low_hash: bytes, high: bytes, high_hash: bytes
    ) -> Subtree:
        """The subtree at `depth` holding exactly two leaves (`low` < `high`): a node with
        both where their keys first differ, under a chain of one-child nodes (what `build`
        makes of two keys, without grouping them level by level)."""
        differ = (
            256 - (int.from_bytes(low, "big") ^ int.from_bytes(high, "big")).bit_length()
        ) >> 2
        both = 1 << nibble(low, differ) | 1 << nibble(high, differ)
        node_hash = self._store_inner(both, low_hash + high_hash, both, low + high, differ, None)
        for up in range(differ - 1, depth - 1, -1):
            node_hash = self._store_inner(1 << nibble(low, up), node_hash, 0, b"", up, None)
        return node_hash, INNER, None

    def _update_inner(self, node_hash: bytes, depth: int, lo: int, hi: int) -> Subtree:
        """The internal node `node_hash` at `depth` after items[lo:hi]."""
        if hi - lo == 1:  # most nodes below the top levels see one change
            return self._update_one(node_hash, depth, lo)
        encoded = self._cached.get(node_hash)
        if encoded is None:
            encoded = self.node(node_hash, depth)
        # check_inner, inlined: every visited node pays for it (an IndexError is a LookupError)
        if encoded[0] != _SMT_NODE_BYTE:
            raise ValueError("not an internal node")
        occupied = old_occupied = encoded[1] << 8 | encoded[2]
        keys_at = 5 + 32 * occupied.bit_count()
        leaves = encoded[keys_at - 2] << 8 | encoded[keys_at - 1]
        if len(encoded) != keys_at + 32 * leaves.bit_count() or leaves & ~occupied:
            raise ValueError("internal node length or leaf map does not match its occupied map")
        old_children = children = encoded[3 : keys_at - 2]
        old_keys = keys = encoded[keys_at:]
        below = depth + 1
        # highest slot first, so splicing a slot never moves the entries before it
        for slot, group_lo, group_hi in reversed(self._groups(depth, lo, hi)):
            bit = 1 << slot
            at = 32 * (occupied & (bit - 1)).bit_count()
            if not occupied & bit:
                h, kind, key = self._fresh(below, group_lo, group_hi)
                if kind == EMPTY:
                    continue
                end = at
            elif leaves & bit:
                key_at = 32 * (leaves & (bit - 1)).bit_count()
                old_key = keys[key_at : key_at + 32]
                h, kind, key = self._update_leaf(
                    children[at : at + 32], old_key, below, group_lo, group_hi
                )
                if kind == LEAF and key == old_key and h == children[at : at + 32]:
                    continue  # unchanged (an absent key deleted)
                end = at + 32
                keys = keys[:key_at] + keys[key_at + 32 :]
            else:
                h, kind, key = self._update_inner(children[at : at + 32], below, group_lo, group_hi)
                end = at + 32
            if kind == EMPTY:
                occupied &= ~bit
                leaves &= ~bit
                children = children[:at] + children[end:]
                continue
            assert h is not None
            children = children[:at] + h + children[end:]
            occupied |= bit
            if kind == LEAF:
                assert key is not None
                leaves |= bit
                key_at = 32 * (leaves & (bit - 1)).bit_count()
                keys = keys[:key_at] + key + keys[key_at:]
            else:
                leaves &= ~bit
        if occupied == old_occupied and children == old_children and keys == old_keys:
            return node_hash, INNER, None
        self.replaced.append(node_hash)
        if old_keys:
            self._trimmed[node_hash] = encoded[: keys_at - 2] + _NO_LEAVES
        if not occupied:
            return _EMPTY_SUBTREE
        if leaves and not occupied & (occupied - 1):
            return children, LEAF, keys  # a lone leaf rises into the parent's slot
        return self._store_inner(occupied, children, leaves, keys, depth, node_hash), INNER, None

    def _update_one(self, top_hash: bytes, depth: int, index: int) -> Subtree:
        """`_update_inner` for the one change items[index], without recursion: walk down
        to the node whose slot for the key is empty or holds a leaf, change that slot,
        then rewrite the nodes above it bottom up (each one's only changed slot is the
        child below it). Gives what the general pass gives, node for node."""
        key = self._keys[index]
        cached = self._cached
        node_hash = top_hash
        path: list[tuple[bytes, bytes, int, int, int, int]] = []
        while True:
            encoded = cached.get(node_hash)
            if encoded is None:
                encoded = self.node(node_hash, depth)
            # check_inner, inlined (an IndexError is a LookupError)
            if encoded[0] != _SMT_NODE_BYTE:
                raise ValueError("not an internal node")
            occupied = encoded[1] << 8 | encoded[2]
            keys_at = 5 + 32 * occupied.bit_count()
            leaves = encoded[keys_at - 2] << 8 | encoded[keys_at - 1]
            if len(encoded) != keys_at + 32 * leaves.bit_count() or leaves & ~occupied:
                raise ValueError("internal node length or leaf map does not match its occupied map")
            byte = key[depth >> 1]
            bit = 1 << (byte & 15 if depth & 1 else byte >> 4)
            if not occupied & bit or leaves & bit:
                break
            path.append((node_hash, encoded, occupied, leaves, keys_at, depth))
            at = 3 + 32 * (occupied & (bit - 1)).bit_count()
            node_hash = encoded[at : at + 32]
            depth += 1
        # the slot where the key's path ends: empty, or a leaf
        at = 32 * (occupied & (bit - 1)).bit_count()
        children = encoded[3 : keys_at - 2]
        keys = encoded[keys_at:]
        if not occupied & bit:
            _, vh, known = self._items[index]
            if vh is None:  # an absent key deleted: nothing changes
                return top_hash, INNER, None
            # what `_fresh` makes of one new key: its leaf
            h: bytes | None = known if known is not None else self._leaf(key, vh)
            kind = LEAF
            sub_key: bytes | None = key
            end = at
        else:
            key_at = 32 * (leaves & (bit - 1)).bit_count()
            old_key = keys[key_at : key_at + 32]
            old_child = children[at : at + 32]
            h, kind, sub_key = self._update_leaf(old_child, old_key, depth + 1, index, index + 1)
            if kind == LEAF and sub_key == old_key and h == old_child:
                return top_hash, INNER, None  # unchanged (an absent key deleted)
            end = at + 32
            keys = keys[:key_at] + keys[key_at + 32 :]
        # this node, then each one above it, with its one slot changed
        while True:
            if kind == EMPTY:
                new_occupied = occupied & ~bit
                leaves &= ~bit
                children = children[:at] + children[end:]
            else:
                assert h is not None
                children = children[:at] + h + children[end:]
                new_occupied = occupied | bit
                if kind == LEAF:
                    assert sub_key is not None
                    leaves |= bit
                    key_at = 32 * (leaves & (bit - 1)).bit_count()
                    keys = keys[:key_at] + sub_key + keys[key_at:]
                else:
                    leaves &= ~bit
            if (
                new_occupied == occupied
                and children == encoded[3 : keys_at - 2]
                and keys == encoded[keys_at:]
            ):
                return top_hash, INNER, None  # as the node was: so is every node above
            self.replaced.append(node_hash)
            if keys_at < len(encoded):  # it held leaf keys: older heights keep it trimmed
                self._trimmed[node_hash] = encoded[: keys_at - 2] + _NO_LEAVES
            if not new_occupied:
                h, kind, sub_key = _EMPTY_SUBTREE
            elif leaves and not new_occupied & (new_occupied - 1):
                h, kind, sub_key = children, LEAF, keys  # a lone leaf rises into the parent
            else:
                h = self._store_inner(new_occupied, children, leaves, keys, depth, node_hash)
                kind, sub_key = INNER, None
            if not path:
                return h, kind, sub_key
            node_hash, encoded, occupied, leaves, keys_at, depth = path.pop()
            byte = key[depth >> 1]
            bit = 1 << (byte & 15 if depth & 1 else byte >> 4)
            at = 32 * (occupied & (bit - 1)).bit_count()
            end = at + 32
            children = encoded[3 : keys_at - 2]
            keys = encoded[keys_at:]

    def _groups(self, depth: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """(slot at `depth`, start, end) of each run of items[lo:hi] sharing a slot.

        The keys in the range share their first `depth` nibbles, so a run ends at the
        first key not below the next slot's smallest key: a bisection, for big ranges.
        """
        keys = self._keys
        at = depth >> 1
        odd = depth & 1
        out: list[tuple[int, int, int]] = []
        start = lo
        if hi - lo <= _SCAN_RANGE:
            byte = keys[lo][at]
            current = byte & 15 if odd else byte >> 4
            for i in range(lo + 1, hi):
                byte = keys[i][at]
                slot = byte & 15 if odd else byte >> 4
                if slot != current:
                    out.append((current, start, i))
                    start = i
                    current = slot
            out.append((current, start, hi))
            return out
        head = keys[lo][:at]
        while start < hi:
            byte = keys[start][at]
            slot = byte & 15 if odd else byte >> 4
            if slot == 15:
                end = hi
            else:
                bound = (byte & 0xF0) | (slot + 1) if odd else (slot + 1) << 4
                end = bisect_left(keys, head + bytes((bound,)), start, hi)
            out.append((slot, start, end))
            start = end
        return out

    def _store_inner(
        self,
        occupied: int,
        children: bytes,
        leaves: int,
        keys: bytes,
        depth: int,
        replaces: bytes | None,
    ) -> bytes:
        """Stores a new internal node (replacing the cached `replaces`); its hash."""
        hashed = SMT_NODE + occupied.to_bytes(2, "big") + children
        node_hash = self._hash(hashed)
        encoded = hashed + leaves.to_bytes(2, "big") + keys
        self.new_nodes[node_hash] = encoded
        if depth < self._cache_depth:
            if replaces is not None:
                self._uncached.append(replaces)
            self._to_cache.append((node_hash, encoded))
        return node_hash


_SMT_NODE_BYTE = SMT_NODE[0]
_NO_LEAVES = bytes(2)


def trimmed(encoded: bytes) -> bytes:
    """An internal node without its trailer's leaf keys (same hash); a leaf as it is."""
    if encoded[:1] == SMT_LEAF:
        return encoded
    _, leaves, keys_at = check_inner(encoded)
    return encoded if not leaves else encoded[: keys_at - 2] + _NO_LEAVES


# ranges of at most this many items are split by slot in one scan, bigger ones by bisection
_SCAN_RANGE = 8


def _with_leaf(leaf_hash: bytes, leaf_key: bytes, items: list[Item]) -> list[Item]:
    """`items` plus the existing leaf, unless an item replaces or deletes it."""
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid][0] < leaf_key:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(items) and items[lo][0] == leaf_key:
        return items
    return [*items[:lo], (leaf_key, b"", leaf_hash), *items[lo:]]


def _groups(depth: int, items: list[Item]) -> list[tuple[int, list[Item]]]:
    """Sorted items split by their slot at `depth` (contiguous runs, since items are sorted)."""
    out: list[tuple[int, list[Item]]] = []
    start = 0
    current = nibble(items[0][0], depth)
    for i in range(1, len(items)):
        s = nibble(items[i][0], depth)
        if s != current:
            out.append((current, items[start:i]))
            start = i
            current = s
    out.append((current, items[start:]))
    return out
