"""The binary-hashed state tree: the alternative measured against node/smt.py.

Kept for bench/smt_bench.py only (the node does not use it). A subtree's hash is
    32 zero bytes                                  if it holds no leaf,
    SHA-256(SMT_LEAF || key || value hash)         if it holds exactly one leaf,
    SHA-256(SMT_NODE || hash(left) || hash(right)) otherwise,
splitting on one key bit per level. Stored in nodes of 1 level (binary) or 4 levels
(16-ary, Jellyfish-style): same root, same proofs, different cost.

Proofs: kind (1 byte: 0 present, 1 absent: empty subtree, 2 absent: another key's leaf)
|| depth D (2 bytes) || bitmap of D bits of non-empty siblings || those siblings, root
side first || for kind 2: that leaf's key and value hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from bench.smt_binary_nodes import (
    KEY_BITS,
    BlockUpdate,
    Decoded,
    Item,
    Layout,
    NodeCache,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import SMT_LEAF, SMT_NODE
from sparkchain.ledger.smt import (
    EMPTY_ROOT,
    PROOF_ABSENT_EMPTY,
    PROOF_ABSENT_OTHER_LEAF,
    PROOF_PRESENT,
    TreeUpdate,
)
from sparkchain.ledger.smt_nodes import EMPTY, EMPTY_HASH, INNER, LEAF, NodeStore

LAYOUT = Layout(1)

_sha256 = hashlib.sha256


def apply(
    store: NodeStore,
    root: bytes,
    changes: Mapping[bytes, bytes | None],
    cache: NodeCache | None = None,
    *,
    layout: Layout = LAYOUT,
) -> TreeUpdate:
    """The tree after `changes` (32-byte key -> value bytes, None = delete), in one pass.

    Deleting an absent key is a no-op. Raises SparkError(STORAGE_CORRUPT) if a node the
    root refers to is missing or malformed in `store`.
    """
    items: list[Item] = []
    for key, value in changes.items():
        _check_key(key)
        vh = None if value is None else _sha256(value).digest()
        items.append((int.from_bytes(key, "big"), key, vh, None))
    if not items:
        return TreeUpdate(root)
    items.sort(key=_item_key)
    update = BlockUpdate(layout, store, cache)
    try:
        kind = _root_kind(update, root)
        new_root, _ = update.update(None if kind == EMPTY else root, kind, 0, items)
    except (LookupError, ValueError) as e:
        raise _corrupt(root, e) from None
    return TreeUpdate(new_root or EMPTY_ROOT, update.new_nodes, nodes_read=update.nodes_read)


def get(
    store: NodeStore,
    root: bytes,
    key: bytes,
    cache: NodeCache | None = None,
    *,
    layout: Layout = LAYOUT,
) -> bytes | None:
    """The value hash stored under `key`, or None."""
    _check_key(key)
    reader = BlockUpdate(layout, store, cache)
    try:
        kind = _root_kind(reader, root)
        key_int = int.from_bytes(key, "big")
        node_hash: bytes | None = root
        depth = 0
        while kind == INNER:
            assert node_hash is not None
            slots, _, leaf_map, _ = reader.read_node(node_hash, depth)
            slot = layout.slot(key_int, depth)
            node_hash = slots[slot]
            kind = EMPTY if node_hash is None else LEAF if leaf_map >> slot & 1 else INNER
            depth += layout.bits
        if kind == EMPTY:
            return None
        assert node_hash is not None
        leaf_key, vh = reader.read_leaf(node_hash)
    except (LookupError, ValueError) as e:
        raise _corrupt(root, e) from None
    return vh if leaf_key == key else None


def prove(
    store: NodeStore,
    root: bytes,
    key: bytes,
    cache: NodeCache | None = None,
    *,
    layout: Layout = LAYOUT,
) -> bytes:
    """An inclusion proof if `key` is present under `root`, else an exclusion proof."""
    _check_key(key)
    reader = BlockUpdate(layout, store, cache)
    siblings: list[bytes | None] = []
    try:
        kind = _root_kind(reader, root)
        end: bytes | None = root
        key_int = int.from_bytes(key, "big")
        depth = 0
        while kind == INNER:
            assert end is not None
            node = reader.read_node(end, depth)
            end, kind = _descend_node(layout, node, layout.slot(key_int, depth), siblings)
            depth += layout.bits
        if kind == EMPTY:
            return _encode_proof(PROOF_ABSENT_EMPTY, siblings, b"")
        assert end is not None
        leaf_key, vh = reader.read_leaf(end)
    except (LookupError, ValueError) as e:
        raise _corrupt(root, e) from None
    if leaf_key == key:
        return _encode_proof(PROOF_PRESENT, siblings, b"")
    return _encode_proof(PROOF_ABSENT_OTHER_LEAF, siblings, leaf_key + vh)


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: bytes) -> bool:
    """True iff `proof` shows that `key` holds `value` (None: `key` is absent) under `root`.

    Pure (a client runs it without a node) and total: any malformed input gives False.
    """
    try:
        return _verify(root, key, value, proof)
    except (TypeError, ValueError, IndexError):
        return False


def _verify(root: bytes, key: bytes, value: bytes | None, proof: bytes) -> bool:
    if len(root) != 32 or len(key) != 32 or len(proof) < 3:
        return False
    kind = proof[0]
    depth = int.from_bytes(proof[1:3], "big")
    if depth > KEY_BITS:
        return False
    map_len = (depth + 7) // 8
    bitmap = int.from_bytes(proof[3 : 3 + map_len], "big")
    spare_bits = map_len * 8 - depth
    if bitmap & ((1 << spare_bits) - 1):
        return False
    present = bin(bitmap).count("1")
    pos = 3 + map_len
    tail = 64 if kind == PROOF_ABSENT_OTHER_LEAF else 0
    if len(proof) != pos + 32 * present + tail:
        return False
    if kind == PROOF_PRESENT:
        if value is None:
            return False
        h = _sha256(SMT_LEAF + key + _sha256(value).digest()).digest()
    elif kind == PROOF_ABSENT_EMPTY:
        if value is not None:
            return False
        h = EMPTY_HASH
    elif kind == PROOF_ABSENT_OTHER_LEAF:
        if value is not None:
            return False
        other = proof[len(proof) - 64 :]
        other_key = other[:32]
        if other_key == key or not _share_prefix(other_key, key, depth):
            return False
        h = _sha256(SMT_LEAF + other).digest()
    else:
        return False
    key_int = int.from_bytes(key, "big")
    end = len(proof) - tail  # siblings are consumed from the deepest one up
    for d in range(depth - 1, -1, -1):
        if bitmap >> (map_len * 8 - 1 - d) & 1:
            sibling = proof[end - 32 : end]
            end -= 32
        else:
            sibling = EMPTY_HASH
        if key_int >> (KEY_BITS - 1 - d) & 1:
            h = _sha256(SMT_NODE + sibling + h).digest()
        else:
            h = _sha256(SMT_NODE + h + sibling).digest()
    return h == root


def _share_prefix(a: bytes, b: bytes, bits: int) -> bool:
    if bits == 0:
        return True
    shift = KEY_BITS - bits
    return int.from_bytes(a, "big") >> shift == int.from_bytes(b, "big") >> shift


def _descend_node(
    layout: Layout, node: Decoded, slot: int, siblings: list[bytes | None]
) -> tuple[bytes | None, int]:
    """Follow `slot` down a node's binary levels, noting siblings; returns where it ends."""
    slots, occupied, leaf_map, heap = node
    if heap is None:
        heap = node[3] = layout.range_hashes(slots, occupied, leaf_map)
    width = layout.width
    for level in range(layout.bits - 1, -1, -1):
        index = slot >> level  # the key's range one level down, among 2**(bits - level)
        siblings.append(heap[(width >> level) + (index ^ 1)])
        kind = layout.range_kind(occupied, leaf_map, index << level, 1 << level)
        if kind == EMPTY:
            return None, EMPTY
        if kind == LEAF:
            return heap[(width >> level) + index], LEAF
    return slots[slot], INNER


def _encode_proof(kind: int, siblings: list[bytes | None], tail: bytes) -> bytes:
    depth = len(siblings)
    bitmap = 0
    present = []
    for s in siblings:
        bitmap <<= 1
        if s is not None:
            bitmap |= 1
            present.append(s)
    map_len = (depth + 7) // 8
    bitmap <<= map_len * 8 - depth
    return b"".join(
        [bytes((kind,)), depth.to_bytes(2, "big"), bitmap.to_bytes(map_len, "big"), *present, tail]
    )


def _root_kind(reader: BlockUpdate, root: bytes) -> int:
    if len(root) != 32:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "state root must be 32 bytes")
    if root == EMPTY_ROOT:
        return EMPTY
    cache = reader.cache
    if cache is not None and cache.get(root) is not None:
        return INNER
    encoded = reader.store.get(root)
    if encoded is None:
        raise LookupError(root)
    return LEAF if encoded[:1] == SMT_LEAF else INNER


def _check_key(key: bytes) -> None:
    if len(key) != 32:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"tree key must be 32 bytes, not {len(key)}")


def _item_key(item: Item) -> int:
    return item[0]


def _corrupt(root: bytes, error: Exception) -> SparkError:
    what = error.args[0].hex() if isinstance(error, LookupError) else str(error)
    return SparkError(
        ErrorCode.STORAGE_CORRUPT, f"state tree under root {root.hex()}: bad or missing node {what}"
    )
