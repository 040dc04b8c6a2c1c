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

from collections.abc import Iterator, Mapping

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
    SparkError(INVALID_PROOF) naming the first node that does not check out."""
    leaves: dict[bytes, bytes] = {}
    # (hash, the leaf key the parent's trailer names, or None for an internal child)
    pending: list[tuple[bytes, bytes | None]] = []
    if root != EMPTY_HASH:
        pending.append((root, nodes[root][1:33] if nodes.get(root, b"")[:1] == SMT_LEAF else None))
    visited = 0
    # check_inner, child and child_leaf_key inlined: a state sync walks every node of the
    # tree (~275k at 200k identifiers), and a call costs as much as what it does
    node_tag, leaf_tag = SMT_NODE[0], SMT_LEAF[0]
    get, push = nodes.get, pending.append
    while pending:
        node_hash, leaf_key = pending.pop()
        encoded = get(node_hash)
        if encoded is None:
            raise _refused(node_hash, "is missing")
        visited += 1
        if leaf_key is not None:
            if len(encoded) != LEAF_BYTES or encoded[0] != leaf_tag:
                raise _refused(node_hash, "is not the leaf its parent says")
            if hash_fn(encoded) != node_hash or encoded[1:33] != leaf_key:
                raise _refused(node_hash, "does not hash to its name or holds another key")
            leaves[leaf_key] = encoded[33:65]
            continue
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
        at, key_at = 3, keys_at
        for slot in range(16):
            bit = 1 << slot
            if occupied & bit:
                if leaf_map & bit:
                    push((encoded[at : at + 32], encoded[key_at : key_at + 32]))
                    key_at += 32
                else:
                    push((encoded[at : at + 32], None))
                at += 32
    if visited != len(nodes):
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"state tree: {len(nodes) - visited} nodes given are not under root {root.hex()}",
        )
    return leaves


def _refused(node_hash: bytes, problem: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_PROOF, f"state tree node {node_hash.hex()} {problem}")
