"""The whole state tree under a root, node by node: for state snapshots (issue 13 part 4).

`reachable_nodes` lists every stored node under a root (what a snapshot carries of the
tree); `verified_leaves` checks such a list from untrusted hands against a root it
trusts, without rebuilding the tree: each node must hash to the hash its parent names
(for an internal node, H(SMT_NODE || occupied || child hashes), ledger/smt.py, H being the
chain's hash that the caller passes: SHA-256, or SM3 when the genesis chose it), so
the nodes are exactly the tree under the root; the unhashed trailer of an internal node
(which children are leaves, and their keys) is checked against the children themselves;
and no node may be left over. What it returns, leaf key -> value hash, is then what the
state's records must hash to (node/snapshot_restore.py). One hash per node, against
four or so per key and the node building of `smt.apply` for a rebuild.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from itertools import compress, count, repeat

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction
from sparkchain.identifiers.tags import SMT_LEAF, SMT_NODE
from sparkchain.ledger.smt_nodes import (
    EMPTY_HASH,
    LEAF_BYTES,
    NodeStore,
    check_inner,
    child,
)


def reachable_nodes(store: NodeStore, root: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(hash, encoded node) of every node under `root`, parents before children;
    SparkError(STORAGE_CORRUPT) when one is missing or malformed."""
    pending = [] if root == EMPTY_HASH else [root]
    while pending:
        node_hash = pending.pop()
        encoded = store.get(node_hash)
        if encoded is None:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT, f"state tree node {node_hash.hex()} is missing"
            )
        yield node_hash, encoded
        if encoded[:1] == SMT_LEAF:
            continue
        try:
            occupied, _, _ = check_inner(encoded)
        except ValueError as error:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT, f"state tree node {node_hash.hex()}: {error}"
            ) from None
        pending.extend(child(encoded, occupied, slot) for slot in range(16) if occupied >> slot & 1)


def verified_leaves(
    root: bytes, nodes: Mapping[bytes, bytes], hash_fn: HashFunction
) -> dict[bytes, bytes]:
    """Leaf key -> value hash of the tree that `nodes` (hash -> encoded node) make under
    `root`, each node hashed with `hash_fn` (the chain's hash, which built the tree);
    SparkError(INVALID_PROOF) naming the first node that does not check out.

    The internal nodes are walked one by one; the leaves they name (most of the nodes:
    one per key) are then checked all at once, in C, without a bytecode loop per leaf."""
    leaf_hashes: list[bytes] = []
    leaf_keys: list[bytes] = []  # the key each parent's trailer names for its leaf child
    pending: list[bytes] = []  # internal nodes still to check
    if root != EMPTY_HASH:
        if nodes.get(root, b"")[:1] == SMT_LEAF:  # a tree of one key
            leaf_hashes.append(root)
            leaf_keys.append(nodes[root][1:33])
        else:
            pending.append(root)
    visited = 0
    # check_inner, child and child_leaf_key inlined: a call costs as much as what it does
    node_tag = SMT_NODE[0]
    get, push, push_leaf, push_key = nodes.get, pending.append, leaf_hashes.append, leaf_keys.append
    while pending:
        node_hash = pending.pop()
        encoded = get(node_hash)
        if encoded is None:
            raise _refused(node_hash, "is missing")
        visited += 1
        if len(encoded) < 5 or encoded[0] != node_tag:
            raise _refused(node_hash, "not an internal node")
        occupied = encoded[1] << 8 | encoded[2]
        keys_at = 5 + 32 * occupied.bit_count()
        if len(encoded) < keys_at:
            raise _refused(
                node_hash, "internal node length or leaf map does not match its occupied map"
            )
        leaf_map = encoded[keys_at - 2] << 8 | encoded[keys_at - 1]
        if len(encoded) != keys_at + 32 * leaf_map.bit_count() or leaf_map & ~occupied:
            raise _refused(
                node_hash, "internal node length or leaf map does not match its occupied map"
            )
        if hash_fn(encoded[: keys_at - 2]) != node_hash:
            raise _refused(node_hash, "does not hash to its name")
        at, key_at, bits = 3, keys_at, occupied
        while bits:  # the occupied slots, lowest first
            bit = bits & -bits
            bits ^= bit
            if leaf_map & bit:
                push_leaf(encoded[at : at + 32])
                push_key(encoded[key_at : key_at + 32])
                key_at += 32
            else:
                push(encoded[at : at + 32])
            at += 32
    leaves = _checked_leaves(nodes, leaf_hashes, leaf_keys, hash_fn)
    visited += len(leaves)
    if visited != len(nodes):
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"state tree: {len(nodes) - visited} nodes given are not under root {root.hex()}",
        )
    return leaves


def _checked_leaves(
    nodes: Mapping[bytes, bytes],
    leaf_hashes: list[bytes],
    leaf_keys: list[bytes],
    hash_fn: HashFunction,
) -> dict[bytes, bytes]:
    """Key -> value hash of the leaves named, each checked to be given, to be a leaf of the
    key its parent names and to hash to the hash its parent names."""
    encoded = list(map(nodes.get, leaf_hashes, repeat(b"")))
    checks = (
        map(len, encoded),  # given (a missing leaf is b"", too short) and of a leaf's size
        map(_TAG, encoded),
        map(hash_fn, encoded),
        map(_KEY, encoded),
    )
    expected = (repeat(LEAF_BYTES), repeat(SMT_LEAF), iter(leaf_hashes), iter(leaf_keys))
    for got, wanted, problem in zip(checks, expected, _LEAF_PROBLEMS, strict=True):
        bad = next(compress(count(), map(operator.ne, got, wanted)), None)
        if bad is not None:
            raise _refused(leaf_hashes[bad], problem)
    leaves = dict(zip(leaf_keys, map(_VALUE_HASH, encoded), strict=True))
    if len(leaves) != len(leaf_keys):
        raise SparkError(ErrorCode.INVALID_PROOF, "state tree: a key has two leaves")
    return leaves


_TAG = operator.itemgetter(slice(0, 1))
_KEY = operator.itemgetter(slice(1, 33))
_VALUE_HASH = operator.itemgetter(slice(33, 65))
_LEAF_PROBLEMS = (
    "is missing or is not the leaf its parent says",
    "is not the leaf its parent says",
    "does not hash to its name",
    "holds another key than its parent says",
)


def _refused(node_hash: bytes, problem: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_PROOF, f"state tree node {node_hash.hex()} {problem}")
