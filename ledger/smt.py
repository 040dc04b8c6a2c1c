"""Authenticated state: a 16-ary sparse Merkle tree over 256-bit keys (DESIGN §5).

What the root commits to
    Keys are 32 bytes (`tree_key(namespace, key)`); a leaf commits to (key, SHA-256(value)).
    SHA-256 stands for the chain's hash throughout: SM3 when the genesis chose it (every
    function that hashes takes `hash_fn`, identifiers/hashing.py; SHA-256 by default).
    A node has 16 slots, one per next 4-bit digit (nibble) of the key, most significant
    first. The hash of the subtree under a nibble path is
        EMPTY_ROOT (32 zero bytes)                       when it holds no key (only ever the
                                                         root: empty slots are left out),
        SHA-256(SMT_LEAF || key || value hash)           when it holds one key,
        SHA-256(SMT_NODE || occupied || child hashes)    otherwise, `occupied` being the
                                                         16-bit big-endian map of non-empty
                                                         slots (bit s = slot s) and the
                                                         children listed in slot order.
    A lone key is thus lifted as high as it goes (path compression) and the root is a
    function of the key/value set only: order, batching and deletions leave no trace.
    Storage encodings are in node/smt_nodes.py.

Proofs (`prove` -> bytes, `verify_proof`)
    kind (1 byte: 0 = present, 1 = absent: empty slot or empty tree,
          2 = absent: the slot holds another key's leaf)
    || n (1 byte, 0..64): the internal nodes on the key's path, root first, each as
       occupied (2 bytes) || the hashes of its occupied slots except the key's own slot
    || kind 2 only: the other leaf's key (32) and value hash (32).
    The key's slot must be occupied in every node but the last, where it is occupied
    exactly when kind != 1. The verifier rebuilds each node hash from the bottom up and
    compares the result with the root. `verify_proof` never raises: malformed proofs, bad
    lengths and wrong roots all give False (a client can feed it untrusted bytes).

Why 16-ary with one hash per node: measured by bench/smt_bench.py (one run on this
2-core machine, shared with other work; CPU time, LevelDB's threads included), blocks of
1000 new keys into a tree of 1M keys; the two losers are kept in bench/smt_binary.py:
                                  binary     16-ary hashed as     16-ary, one hash
                                             4 binary levels      per node (chosen)
                                             (Jellyfish-style)
    nodes written / read per key  12.4 / 7.0  3.8 / 1.7           3.8 / 0.25
    SHA-256 per key               12.4        31.5                3.8
    bytes written per key         798         1,050               1,286
    update keys/s, dict store     10,700      21,000              58,300
    update keys/s, LevelDB        3,500       8,400               20,600
    proofs built/s, LevelDB       2,500       6,300               20,700
    proofs verified/s             62,700      56,500              88,800
    proof bytes, present key      656         656                 2,260
The binary tree touches ~3x more nodes per key and each uncached node is a LevelDB read.
Hashing a 16-slot node as 4 binary levels keeps binary-sized proofs but costs up to 15
SHA-256 per node rewrite, which dominated its profile. One hash over the 16 children
costs one SHA-256 per node, and a node update is a bytes splice; the price is proofs of
~2.3 KB instead of ~0.7 KB at 1M keys, which a resolve reply carries easily. Parents keep
their leaf children's keys (not hashed), so inserting next to a leaf and proving a present
key read no leaf: that is the extra bytes written per key. The default NodeCache holds the
top 5 levels (69,905 nodes, ~36 MB at 1M keys): 0.25 LevelDB reads per key instead of
1.24 with 4 levels (~2 MB), i.e. 20,600 instead of 14,100 updates/s on LevelDB.

`apply` handles a whole block in one pass: changes are sorted, the tree is descended once,
and every touched node is rehashed and emitted once per block. Nothing is written here:
the ledger stores `TreeUpdate.new_nodes` content-addressed and may prune the nodes that
`TreeUpdate.stale_nodes` lists once it no longer proves the old root (ledger/smt_prune.py
says when a node can go; node/pruning.py does it). Reads go through an optional bounded
NodeCache of the upper levels: keep one per ledger (shared by its writer and readers),
pass it to every call, and `warm_cache` it when the node starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.identifiers.tags import (
    SMT_LEAF,
    SMT_NODE,
    TREE_PREFIX_NAMESPACE,
    TREE_RECORD_NAMESPACE,
    TREE_VALIDATORS_KEY,
    TREE_VALIDATORS_NAMESPACE,
)
from sparkchain.ledger.smt_nodes import (
    CACHE_MAX_DEPTH,
    CACHE_MAX_NODES,
    EMPTY_HASH,
    NIBBLES,
    BlockUpdate,
    Item,
    NodeCache,
    NodeStore,
    TreeReader,
    check_inner,
    child,
    leaf_key_value,
    nibble,
)

__all__ = [
    "CACHE_MAX_DEPTH",
    "CACHE_MAX_NODES",
    "EMPTY_ROOT",
    "NodeCache",
    "NodeStore",
    "TreeUpdate",
    "apply",
    "get",
    "prove",
    "tree_key",
    "validators_tree_key",
    "value_hash",
    "verify_proof",
    "warm_cache",
]

EMPTY_ROOT: bytes = EMPTY_HASH

PROOF_PRESENT = 0
PROOF_ABSENT_EMPTY = 1
PROOF_ABSENT_OTHER_LEAF = 2


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """The new root and the nodes to store for it (node hash -> encoded node).

    `stale_nodes` are the nodes of the old tree that the new one no longer holds: what a
    pruning ledger may delete once it no longer proves the old root (node/pruning.py).
    """

    root: bytes
    new_nodes: dict[bytes, bytes] = field(default_factory=dict)
    stale_nodes: list[bytes] = field(default_factory=list)
    # of the stale nodes, the internal ones with leaf keys, trimmed (smt_nodes.trimmed)
    trimmed_nodes: dict[bytes, bytes] = field(default_factory=dict)
    nodes_read: int = 0  # from the store (cache misses): the benchmark's cost breakdown


def _tree_key_head(namespace: bytes) -> bytes:
    """What a tree key hashes before the key: the namespace, length-prefixed."""
    return bytes((len(namespace),)) + namespace


def tree_key(namespace: bytes, key: bytes, hash_fn: HashFunction = sha256) -> bytes:
    """The 256-bit tree key of `key` in `namespace` (length-prefixed: no two collide)."""
    return hash_fn(_tree_key_head(namespace) + key)


def tree_keys(namespace: bytes, keys: Iterable[bytes], hash_fn: HashFunction) -> Iterator[bytes]:
    """`tree_key` of each of `keys` in `namespace`, lazily and without a call of ours per key
    (a state sync checks every record of the state: node/snapshot_restore.py)."""
    return map(hash_fn, map(_tree_key_head(namespace).__add__, keys))


def record_tree_key(identifier_key: str, hash_fn: HashFunction = sha256) -> bytes:
    """Where a record sits in the state tree: its identifier key in the record namespace."""
    return tree_key(TREE_RECORD_NAMESPACE, identifier_key.encode("utf-8"), hash_fn)


_RECORD_TREE_HEAD = _tree_key_head(TREE_RECORD_NAMESPACE)


def record_tree_key_of(key_bytes: bytes, hash_fn: HashFunction = sha256) -> bytes:
    """`record_tree_key` of the identifier key's UTF-8."""
    return hash_fn(_RECORD_TREE_HEAD + key_bytes)


def validators_tree_key(hash_fn: HashFunction = sha256) -> bytes:
    """The one leaf that holds the validator schedule (ledger/validators.py)."""
    return tree_key(TREE_VALIDATORS_NAMESPACE, TREE_VALIDATORS_KEY, hash_fn)


def prefix_tree_key(prefix_key: str, hash_fn: HashFunction = sha256) -> bytes:
    return tree_key(TREE_PREFIX_NAMESPACE, prefix_key.encode("utf-8"), hash_fn)


def value_hash(value: bytes, hash_fn: HashFunction = sha256) -> bytes:
    """What a leaf commits to for a value."""
    return hash_fn(value)


def apply(
    store: NodeStore,
    root: bytes,
    changes: Mapping[bytes, bytes | None],
    cache: NodeCache | None = None,
    hash_fn: HashFunction = sha256,
) -> TreeUpdate:
    """The tree after `changes` (32-byte key -> value bytes, None = delete), in one pass.

    Deleting an absent key is a no-op. Raises SparkError(INVALID_ARGUMENT) for a key or
    root that is not 32 bytes and SparkError(STORAGE_CORRUPT) if a node under `root` is
    missing from `store` or malformed.
    """
    _check_root(root)
    items: list[Item] = []
    append = items.append
    for key, value in changes.items():
        if len(key) != 32:
            _check_key(key)  # raises
        append((key, None if value is None else hash_fn(value), None))
    if not items:
        return TreeUpdate(root)
    items.sort(key=itemgetter(0))
    update = BlockUpdate(store, cache, hash_fn)
    try:
        new_root = update.apply_to_root(root, items)
    except (LookupError, ValueError) as error:
        raise _corrupt(root, error) from None
    return TreeUpdate(
        new_root or EMPTY_ROOT,
        update.new_nodes,
        update.stale_nodes(),
        update.trimmed_stale_nodes(),
        update.nodes_read,
    )


def get(store: NodeStore, root: bytes, key: bytes, cache: NodeCache | None = None) -> bytes | None:
    """The value hash stored under `key`, or None."""
    reader = TreeReader(store, cache)
    leaf_hash, leaf_key = _walk(reader, root, key, None)
    if leaf_hash is None or leaf_key != key:
        return None
    return _read_leaf(reader, root, leaf_hash)[1]


def prove(store: NodeStore, root: bytes, key: bytes, cache: NodeCache | None = None) -> bytes:
    """An inclusion proof if `key` is present under `root`, else an exclusion proof."""
    reader = TreeReader(store, cache)
    path: list[bytes] = []
    leaf_hash, leaf_key = _walk(reader, root, key, path)
    if leaf_hash is None:
        return b"".join([bytes((PROOF_ABSENT_EMPTY, len(path))), *path])
    if leaf_key == key:
        return b"".join([bytes((PROOF_PRESENT, len(path))), *path])
    other_key, other_value_hash = _read_leaf(reader, root, leaf_hash)
    return b"".join(
        [bytes((PROOF_ABSENT_OTHER_LEAF, len(path))), *path, other_key, other_value_hash]
    )


def warm_cache(store: NodeStore, root: bytes, cache: NodeCache) -> int:
    """Load the cached levels of the tree under `root` (e.g. when the node starts, so the
    first blocks and proofs do not pay for a cold cache); returns the nodes loaded."""
    _check_root(root)
    reader = TreeReader(store, cache)
    level = [] if root == EMPTY_ROOT else [root]
    try:
        for depth in range(cache.max_depth):
            below = []
            for node_hash in level:
                encoded = reader.node(node_hash, depth)
                if encoded[:1] == SMT_LEAF:
                    continue
                occupied, leaves, _ = check_inner(encoded)
                for slot in range(16):
                    if occupied >> slot & 1 and not leaves >> slot & 1:
                        below.append(child(encoded, occupied, slot))
            level = below
    except (LookupError, ValueError) as error:
        raise _corrupt(root, error) from None
    return reader.nodes_read


def verify_proof(
    root: bytes, key: bytes, value: bytes | None, proof: bytes, hash_fn: HashFunction = sha256
) -> bool:
    """True iff `proof` shows that `key` holds `value` (None: `key` is absent) under `root`.

    Pure and total: a client runs it without a node, on untrusted bytes; anything
    malformed gives False, never an exception.
    """
    try:
        return _verify(root, key, value, proof, hash_fn)
    except (TypeError, ValueError, IndexError):
        return False


def _verify(
    root: bytes, key: bytes, value: bytes | None, proof: bytes, hash_fn: HashFunction
) -> bool:
    if len(root) != 32 or len(key) != 32 or len(proof) < 2:
        return False
    kind, depth = proof[0], proof[1]
    if kind > PROOF_ABSENT_OTHER_LEAF or depth > NIBBLES or (value is None) == (kind == 0):
        return False
    # parse the nodes root first: (occupied, siblings, slot)
    nodes = []
    at = 2
    for level in range(depth):
        occupied = int.from_bytes(proof[at : at + 2], "big")
        slot = nibble(key, level)
        own = occupied >> slot & 1
        if not own and (level < depth - 1 or kind != PROOF_ABSENT_EMPTY):
            return False
        if own and level == depth - 1 and kind == PROOF_ABSENT_EMPTY:
            return False
        size = 32 * (occupied.bit_count() - own)
        nodes.append((occupied, proof[at + 2 : at + 2 + size], slot))
        at += 2 + size
        if at > len(proof):
            return False
    tail = proof[at:]
    if kind == PROOF_PRESENT:
        assert value is not None
        if tail:
            return False
        h: bytes | None = hash_fn(SMT_LEAF + key + hash_fn(value))
    elif kind == PROOF_ABSENT_EMPTY:
        if tail:
            return False
        h = None
    else:
        other_key = tail[:32]
        if len(tail) != 64 or other_key == key or other_key[: depth // 2] != key[: depth // 2]:
            return False
        if depth & 1 and nibble(other_key, depth - 1) != nibble(key, depth - 1):
            return False
        h = hash_fn(SMT_LEAF + tail)
    for occupied, siblings, slot in reversed(nodes):
        cut = 32 * (occupied & ((1 << slot) - 1)).bit_count()
        children = siblings if h is None else siblings[:cut] + h + siblings[cut:]
        h = hash_fn(SMT_NODE + occupied.to_bytes(2, "big") + children)
    return (h or EMPTY_ROOT) == root


def _walk(
    reader: TreeReader, root: bytes, key: bytes, path: list[bytes] | None
) -> tuple[bytes | None, bytes | None]:
    """Follow `key` from `root` to where it ends: (leaf hash, leaf key), or (None, None) at
    an empty slot. With `path`, collects each node's part of a proof."""
    _check_root(root)
    _check_key(key)
    if root == EMPTY_ROOT:
        return None, None
    # check_inner, nibble, child, child_leaf_key and the proof part inlined: every proof
    # and resolve-with-proof walks ~6 nodes, and a call costs as much as what it does
    cached = {} if reader.cache is None else reader.cache._nodes
    try:
        node_hash = root
        depth = 0
        while True:
            encoded = cached.get(node_hash)
            if encoded is None:
                encoded = reader.node(node_hash, depth)
            tag = encoded[0]
            if tag != _SMT_NODE_BYTE:
                # a tree of one key, or below a trimmed node (smt_nodes.py), a leaf child
                if tag == _SMT_LEAF_BYTE:
                    return node_hash, leaf_key_value(encoded)[0]
                raise ValueError("not an internal node")
            occupied = encoded[1] << 8 | encoded[2]
            keys_at = 5 + 32 * occupied.bit_count()
            leaves = encoded[keys_at - 2] << 8 | encoded[keys_at - 1]
            if len(encoded) != keys_at + 32 * leaves.bit_count() or leaves & ~occupied:
                raise ValueError("internal node length or leaf map does not match its occupied map")
            byte = key[depth >> 1]
            bit = 1 << (byte & 15 if depth & 1 else byte >> 4)
            if not occupied & bit:
                if path is not None:
                    path.append(encoded[1 : keys_at - 2])
                return None, None
            at = 3 + 32 * (occupied & (bit - 1)).bit_count()
            if path is not None:  # occupied || every child hash but the slot's own
                path.append(encoded[1:at] + encoded[at + 32 : keys_at - 2])
            node_hash = encoded[at : at + 32]
            if leaves & bit:
                key_at = keys_at + 32 * (leaves & (bit - 1)).bit_count()
                return node_hash, encoded[key_at : key_at + 32]
            depth += 1
    except (LookupError, ValueError) as error:
        raise _corrupt(root, error) from None


_SMT_NODE_BYTE = SMT_NODE[0]
_SMT_LEAF_BYTE = SMT_LEAF[0]


def _read_leaf(reader: TreeReader, root: bytes, leaf_hash: bytes) -> tuple[bytes, bytes]:
    try:
        return reader.leaf(leaf_hash)
    except (LookupError, ValueError) as error:
        raise _corrupt(root, error) from None


def _check_root(root: bytes) -> None:
    if len(root) != 32:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"state root must be 32 bytes, not {len(root)}"
        )


def _check_key(key: bytes) -> None:
    if len(key) != 32:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"tree key must be 32 bytes, not {len(key)}")


def _corrupt(root: bytes, error: Exception) -> SparkError:
    missing = error.args[0] if error.args else None
    what = missing.hex() if isinstance(missing, bytes) else str(error)
    return SparkError(
        ErrorCode.STORAGE_CORRUPT, f"state tree under root {root.hex()}: bad or missing node {what}"
    )
