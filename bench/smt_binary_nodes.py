"""Nodes of the binary-hashed state tree: the alternative measured against node/smt.py.

Kept for bench/smt_bench.py only (the node does not use it). The tree's hash is defined on
the binary tree (see bench/smt_binary.py); a stored node holds `bits` binary levels at
once: 2**bits child slots, each empty, a leaf hash or the hash of a deeper stored node.
bits=1 is the plain binary layout, bits=4 the 16-ary Jellyfish-style one (a node's hash
is the root of its 4 binary levels); both give the same root and the same proofs.

Canonical layout: every subtree at a depth that is a multiple of `bits` holding two or
more leaves is a stored node; one leaf is lifted into its parent's slot; none is an empty
slot. Leaves are stored separately under their own hash.

Encodings (first byte is the kind):
    leaf  SMT_LEAF || key (32) || value hash (32)        stored under SHA-256(encoding)
    node  SMT_NODE || occupied bitmap || leaf bitmap || hash of every occupied slot
          (bitmaps: ceil(2**bits / 8) bytes, little-endian, bit i = slot i)
"""

from __future__ import annotations

import hashlib
import threading

from sparkchain.identifiers.tags import SMT_LEAF, SMT_NODE
from sparkchain.ledger.smt_nodes import EMPTY, EMPTY_HASH, INNER, LEAF, NodeStore

KEY_BITS = 256

_sha256 = hashlib.sha256


# A decoded internal node: [slot hashes (None = empty), occupied bitmap, leaf bitmap, range
# hashes or None] (bit i of a bitmap = slot i). The range hashes (see Layout.range_hashes)
# are filled lazily by proofs and kept while the node is cached.
Decoded = list


class NodeCache:
    """Decoded nodes near the root, keyed by hash; bounded; shared across blocks and threads.

    Nodes are content-addressed and never change, so an entry can never be wrong, only
    stale (the old version of a node a later block rewrote). `apply` drops the old version
    of each node it rewrites, so the cache holds about the upper levels of the latest tree;
    the size bound only matters when proposals are discarded.
    """

    def __init__(self, max_nodes: int = 20_000, max_depth_bits: int = 16) -> None:
        self.max_nodes = max_nodes
        self.max_depth_bits = max_depth_bits
        self._nodes: dict[bytes, Decoded] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, node_hash: bytes) -> Decoded | None:
        return self._nodes.get(node_hash)

    def put(self, node_hash: bytes, node: Decoded) -> None:
        with self._lock:
            nodes = self._nodes
            while len(nodes) >= self.max_nodes:
                del nodes[next(iter(nodes))]  # oldest first
            nodes[node_hash] = node

    def drop(self, node_hash: bytes) -> None:
        self._nodes.pop(node_hash, None)


class Layout:
    """Stored nodes of `bits` binary levels (bits divides 256)."""

    def __init__(self, bits: int) -> None:
        if bits not in (1, 2, 4, 8):
            raise ValueError("bits must be 1, 2, 4 or 8")
        self.bits = bits
        self.width = 1 << bits
        self.slot_mask = self.width - 1
        self.map_bytes = max(1, self.width // 8)

    # ----- encoding -------------------------------------------------------------

    def encode(self, slots: list[bytes | None], occupied: int, leaf_map: int) -> bytes:
        mb = self.map_bytes
        return b"".join(
            [
                SMT_NODE,
                occupied.to_bytes(mb, "little"),
                leaf_map.to_bytes(mb, "little"),
                *[h for h in slots if h is not None],
            ]
        )

    def decode(self, encoded: bytes) -> Decoded:
        """The decoded node; raises ValueError if malformed."""
        mb = self.map_bytes
        if encoded[:1] != SMT_NODE or len(encoded) < 1 + 2 * mb:
            raise ValueError("not an internal node")
        occupied = int.from_bytes(encoded[1 : 1 + mb], "little")
        leaf_map = int.from_bytes(encoded[1 + mb : 1 + 2 * mb], "little")
        slots: list[bytes | None] = [None] * self.width
        pos = 1 + 2 * mb
        rest = occupied
        while rest:
            low = rest & -rest
            slots[low.bit_length() - 1] = encoded[pos : pos + 32]
            pos += 32
            rest ^= low
        if pos != len(encoded) or leaf_map & ~occupied:
            raise ValueError("node length or leaf bitmap does not match its occupied bitmap")
        return [slots, occupied, leaf_map, None]

    # ----- hashing --------------------------------------------------------------

    def node_hash(self, slots: list[bytes | None], occupied: int, leaf_map: int) -> bytes:
        """The hash of a stored node: the root of its binary levels."""
        if self.bits == 1:
            return _sha256(SMT_NODE + (slots[0] or EMPTY_HASH) + (slots[1] or EMPTY_HASH)).digest()
        h = self.range_hash(slots, occupied, leaf_map, 0, self.width)
        assert h is not None
        return h

    def range_hash(
        self, slots: list[bytes | None], occupied: int, leaf_map: int, first: int, size: int
    ) -> bytes | None:
        """Hash of the binary subtree over slots [first, first + size); None when empty.

        A range holding nothing is empty; a range holding one leaf and nothing else is that
        leaf (lifted); anything else is SHA-256(SMT_NODE || left half || right half).
        """
        inside = occupied >> first & ((1 << size) - 1)
        if not inside:
            return None
        if not inside & (inside - 1):
            slot = first + inside.bit_length() - 1
            if size == 1 or leaf_map >> slot & 1:
                return slots[slot]
        half = size >> 1
        left = self.range_hash(slots, occupied, leaf_map, first, half) or EMPTY_HASH
        right = self.range_hash(slots, occupied, leaf_map, first + half, half) or EMPTY_HASH
        return _sha256(SMT_NODE + left + right).digest()

    def range_hashes(self, slots: list[bytes | None], occupied: int, leaf_map: int) -> list:
        """Every range hash of a node as a heap: index 1 = whole node, 2i and 2i+1 = halves of
        i, `width + slot` = a slot. Entries under an empty or lifted-leaf range stay None."""
        heap: list[bytes | None] = [None] * (2 * self.width)
        self._fill(heap, slots, occupied, leaf_map, 1, 0, self.width)
        return heap

    def _fill(
        self,
        heap: list[bytes | None],
        slots: list[bytes | None],
        occupied: int,
        leaf_map: int,
        index: int,
        first: int,
        size: int,
    ) -> bytes | None:
        inside = occupied >> first & ((1 << size) - 1)
        if not inside:
            return None
        if not inside & (inside - 1):
            slot = first + inside.bit_length() - 1
            if size == 1 or leaf_map >> slot & 1:
                heap[index] = slots[slot]
                return slots[slot]
        half = size >> 1
        left = self._fill(heap, slots, occupied, leaf_map, 2 * index, first, half)
        right = self._fill(heap, slots, occupied, leaf_map, 2 * index + 1, first + half, half)
        h = heap[index] = _sha256(SMT_NODE + (left or EMPTY_HASH) + (right or EMPTY_HASH)).digest()
        return h

    def range_kind(self, occupied: int, leaf_map: int, first: int, size: int) -> int:
        inside = occupied >> first & ((1 << size) - 1)
        if not inside:
            return EMPTY
        if not inside & (inside - 1):
            slot = first + inside.bit_length() - 1
            if leaf_map >> slot & 1:
                return LEAF
        return INNER

    def hash_count(self, occupied: int, leaf_map: int, first: int = 0, size: int = 0) -> int:
        """SHA-256 calls `node_hash` makes for a node (for the benchmark's cost breakdown)."""
        size = size or self.width
        if size == 1 or self.range_kind(occupied, leaf_map, first, size) != INNER:
            return 0
        half = size >> 1
        return (
            1
            + self.hash_count(occupied, leaf_map, first, half)
            + self.hash_count(occupied, leaf_map, first + half, half)
        )

    def slot(self, key_int: int, depth: int) -> int:
        return key_int >> (KEY_BITS - depth - self.bits) & self.slot_mask


# An item of a block's changes: (key as int, key, value hash or None = delete, leaf hash if
# this item is an existing leaf being pushed down unchanged).
Item = tuple[int, bytes, "bytes | None", "bytes | None"]


class BlockUpdate:
    """One pass of a block's sorted changes down the tree, collecting the new nodes."""

    def __init__(self, layout: Layout, store: NodeStore, cache: NodeCache | None) -> None:
        self.layout = layout
        self.store = store
        self.cache = cache
        self.new_nodes: dict[bytes, bytes] = {}
        self.nodes_read = 0

    def read_node(self, node_hash: bytes, depth: int) -> Decoded:
        cache = self.cache
        if cache is not None:
            node = cache.get(node_hash)
            if node is not None:
                return node
        encoded = self.store.get(node_hash)
        self.nodes_read += 1
        if encoded is None:
            raise LookupError(node_hash)
        node = self.layout.decode(encoded)
        if cache is not None and depth < cache.max_depth_bits:
            cache.put(node_hash, node)
        return node

    def read_leaf(self, leaf_hash: bytes) -> tuple[bytes, bytes]:
        encoded = self.store.get(leaf_hash)
        self.nodes_read += 1
        if encoded is None:
            raise LookupError(leaf_hash)
        if len(encoded) != 65 or encoded[:1] != SMT_LEAF:
            raise ValueError("not a leaf")
        return encoded[1:33], encoded[33:65]

    def update(
        self, node_hash: bytes | None, kind: int, depth: int, items: list[Item]
    ) -> tuple[bytes | None, int]:
        """The new (hash, kind) of the subtree at `depth` after `items` (all under it)."""
        if kind == INNER:
            assert node_hash is not None
            return self._update_inner(node_hash, depth, items)
        if kind == LEAF:
            assert node_hash is not None
            items = self._merge_leaf(node_hash, items)
        inserts = [item for item in items if item[2] is not None]
        if not inserts:
            return None, EMPTY
        return self.build(depth, inserts)

    def _merge_leaf(self, leaf_hash: bytes, items: list[Item]) -> list[Item]:
        """`items` plus the existing leaf, unless an item replaces or deletes it."""
        key, vh = self.read_leaf(leaf_hash)
        key_int = int.from_bytes(key, "big")
        at = _bisect_key(items, key_int)
        if at < len(items) and items[at][0] == key_int:
            return items
        return [*items[:at], (key_int, key, vh, leaf_hash), *items[at:]]

    def build(self, depth: int, inserts: list[Item]) -> tuple[bytes, int]:
        """A fresh subtree holding exactly `inserts` (non-empty, distinct keys)."""
        if len(inserts) == 1:
            _, key, vh, known = inserts[0]
            if known is not None:
                return known, LEAF
            assert vh is not None
            encoded = SMT_LEAF + key + vh
            leaf_hash = _sha256(encoded).digest()
            self.new_nodes[leaf_hash] = encoded
            return leaf_hash, LEAF
        layout = self.layout
        slots: list[bytes | None] = [None] * layout.width
        occupied = leaf_map = 0
        for slot, group in _groups(layout, depth, inserts):
            h, k = self.build(depth + layout.bits, group)
            slots[slot] = h
            occupied |= 1 << slot
            if k == LEAF:
                leaf_map |= 1 << slot
        return self._store_inner(slots, occupied, leaf_map, depth, None)

    def _update_inner(
        self, node_hash: bytes, depth: int, items: list[Item]
    ) -> tuple[bytes | None, int]:
        layout = self.layout
        old_slots, old_occupied, old_leaf_map, _ = self.read_node(node_hash, depth)
        slots = list(old_slots)
        occupied = old_occupied
        leaf_map = old_leaf_map
        for slot, group in _groups(layout, depth, items):
            child = slots[slot]
            bit = 1 << slot
            child_kind = EMPTY if child is None else LEAF if leaf_map & bit else INNER
            h, k = self.update(child, child_kind, depth + layout.bits, group)
            slots[slot] = h
            if k == EMPTY:
                occupied &= ~bit
                leaf_map &= ~bit
            elif k == LEAF:
                occupied |= bit
                leaf_map |= bit
            else:
                occupied |= bit
                leaf_map &= ~bit
        if slots == old_slots and leaf_map == old_leaf_map:
            return node_hash, INNER
        if not occupied:
            return None, EMPTY
        if not occupied & (occupied - 1) and leaf_map:
            return slots[leaf_map.bit_length() - 1], LEAF  # a lone leaf rises to the parent
        return self._store_inner(slots, occupied, leaf_map, depth, node_hash)

    def _store_inner(
        self,
        slots: list[bytes | None],
        occupied: int,
        leaf_map: int,
        depth: int,
        replaces: bytes | None,
    ) -> tuple[bytes, int]:
        layout = self.layout
        h = layout.node_hash(slots, occupied, leaf_map)
        self.new_nodes[h] = layout.encode(slots, occupied, leaf_map)
        cache = self.cache
        if cache is not None and depth < cache.max_depth_bits:
            if replaces is not None:
                cache.drop(replaces)
            cache.put(h, [slots, occupied, leaf_map, None])
        return h, INNER


def _bisect_key(items: list[Item], key_int: int) -> int:
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid][0] < key_int:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _groups(layout: Layout, depth: int, items: list[Item]) -> list[tuple[int, list[Item]]]:
    """Sorted items split by their slot at `depth` (contiguous, since items are sorted)."""
    shift = KEY_BITS - depth - layout.bits
    mask = layout.slot_mask
    out: list[tuple[int, list[Item]]] = []
    start = 0
    current = items[0][0] >> shift & mask
    for i in range(1, len(items)):
        s = items[i][0] >> shift & mask
        if s != current:
            out.append((current, items[start:i]))
            start = i
            current = s
    out.append((current, items[start:]))
    return out
