"""The whole state tree under a root, node by node: for state snapshots (issue 13 part 4).

`reachable_nodes` lists every stored node under a root (what a snapshot carries of the
tree); the rest checks such a list from untrusted hands against a root it trusts,
without rebuilding the tree. `checked_tree` walks the internal nodes: each must hash to
the hash its parent names (H(SMT_NODE || occupied || child hashes), ledger/smt.py, H being
the chain's hash that the caller passes: SHA-256, or SM3 when the genesis chose it), so
they are exactly the internal nodes under the root, and their unhashed trailers name the
key of each leaf child beside its hash. `match_leaves` then takes the state's keys and
leaves built from its values (node/snapshot_restore.py: its records, prefixes and
schedule): each key's leaf, H(SMT_LEAF || key || value hash), must be the one named for
that key (and, where leaves are given too, be given as it is); `check_all_matched` finally
asks that no leaf named is left without a value and no node given is left over. One hash
per node, against four or so per key and the node building of `smt.apply` for a rebuild.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import compress, count, repeat
from typing import NamedTuple

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction
from sparkchain.identifiers.tags import SMT_LEAF, SMT_NODE
from sparkchain.ledger.smt_nodes import (
    EMPTY_HASH,
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


@dataclass(frozen=True, slots=True, eq=False)
class CheckedTree:
    """The internal nodes of a tree under a trusted root, each checked against the hash its
    parent names; the leaves they name are still to be matched (`match_leaves`)."""

    named: dict[bytes, bytes]  # leaf key -> leaf hash, as the parents name them
    internal_nodes: int
    # (hash, encoded) of the internal nodes above the depth asked for, the root's level first
    upper_nodes: list[tuple[bytes, bytes]]


def checked_tree(
    root: bytes, nodes: Mapping[bytes, bytes], hash_fn: HashFunction, upper_depth: int = 0
) -> CheckedTree:
    """Walk the internal nodes that `nodes` (hash -> encoded node) make under `root`, each
    hashed with `hash_fn` (the chain's hash, which built the tree); SparkError(INVALID_PROOF)
    naming the first that does not check out. Those at depths below `upper_depth` are kept
    (a ledger's tree cache holds them: smt_nodes.NodeCache)."""
    named: dict[bytes, bytes] = {}
    pending: list[bytes] = []  # internal nodes still to check
    depths: list[int] = []  # beside each, its depth
    upper: list[list[tuple[bytes, bytes]]] = [[] for _ in range(upper_depth)]
    if root != EMPTY_HASH:
        if nodes.get(root, b"")[:1] == SMT_LEAF:  # a tree of one key
            named[nodes[root][1:33]] = root
        else:
            pending.append(root)
            depths.append(0)
    visited = 0
    # check_inner, child and child_leaf_key inlined: a call costs as much as what it does
    node_tag = SMT_NODE[0]
    get, push, push_depth = nodes.get, pending.append, depths.append
    while pending:
        node_hash = pending.pop()
        depth = depths.pop()
        encoded = get(node_hash)
        if encoded is None:
            raise _refused(node_hash, "is missing")
        visited += 1
        if depth < upper_depth:
            upper[depth].append((node_hash, encoded))
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
                named[encoded[key_at : key_at + 32]] = encoded[at : at + 32]
                key_at += 32
            else:
                push(encoded[at : at + 32])
                push_depth(depth + 1)
            at += 32
    return CheckedTree(named, visited, [node for level in upper for node in level])


class LeafMismatch(NamedTuple):
    at: int  # the index of the key whose leaf does not match
    given_leaf: bytes | None  # the hash of its leaf, when the node given for it is wrong


def leaf_nodes(keys: list[bytes], value_hashes: Iterable[bytes]) -> list[bytes]:
    """The encoded leaf of each of `keys` (tree keys) beside its value hash, in C."""
    return list(map(operator.add, map(SMT_LEAF.__add__, keys), value_hashes))


def match_leaves(
    tree: CheckedTree,
    nodes: Mapping[bytes, bytes],
    keys: list[bytes],
    leaves: list[bytes],
    leaf_hashes: list[bytes],
    *,
    given: bool,
) -> LeafMismatch | None:
    """Take the leaf of each of `keys` (tree keys) out of `tree.named`: it must be the leaf
    built for that key (`leaves`, `leaf_hashes`: `leaf_nodes` and the hash of each), and,
    when the leaves are `given`, `nodes` must hold it as it is. The first key for which it
    is not, or None. All in C, without a bytecode loop per leaf (a state sync matches every
    record of the state)."""
    named = map(tree.named.pop, keys, repeat(None))
    first = next(compress(count(), map(operator.ne, named, leaf_hashes)), None)
    if first is not None:
        return LeafMismatch(first, None)
    if not given:
        return None
    given_nodes = map(nodes.get, leaf_hashes)
    first = next(compress(count(), map(operator.ne, given_nodes, leaves)), None)
    return None if first is None else LeafMismatch(first, leaf_hashes[first])


def check_all_matched(tree: CheckedTree, nodes: Mapping[bytes, bytes], leaves: int) -> None:
    """After `match_leaves` took every leaf, `leaves` of them given in `nodes`: every leaf
    the tree names was taken and no node given is left over."""
    if tree.named:
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"state tree: {len(tree.named)} keys of the tree are missing from it",
        )
    if tree.internal_nodes + leaves != len(nodes):
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"state tree: {len(nodes) - tree.internal_nodes - leaves} nodes given are not "
            "under root",
        )


def _refused(node_hash: bytes, problem: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_PROOF, f"state tree node {node_hash.hex()} {problem}")
