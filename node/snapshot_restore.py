"""Check a state snapshot from untrusted peers (node/snapshot_write.py writes it).

Nothing a peer sends is trusted; the chain of evidence, each link checked here
(`verify_snapshot`: `certify_snapshot` up to the certified header, then
`check_snapshot_state`):
    genesis validators --validator changes--> the validators of block H
        (each change: the certified header of the block before the new set signs, found
        through the snapshot's `v` entries; ledger/proof.py `verify_certified_header`)
    those validators --certificate--> block H's header (height, hash as the manifest says)
    every chunk      --H-->           the manifest's chunk hashes
    the chunks' tree nodes --hashes--> H's state_root (ledger/smt_walk.py: exactly the tree
        under it), whose leaves are exactly the chunks' records, prefixes and schedule
The bodies of the blocks kept (H and the set changes) must match their headers' tx roots.
H, here and in every link, is the chain's hash from the genesis (SHA-256, or SM3 when it
chose it: identifiers/hashing.py); nothing in a check hashes with anything else.
Sets scheduled to sign after H+1 (in the snapshot's `v` entries) must be those of the
schedule that the state root covers.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashAlgorithm, HashFunction, hash_function
from sparkchain.identifiers.limits import MAX_SNAPSHOT_CHUNKS
from sparkchain.identifiers.tags import TREE_PREFIX_NAMESPACE
from sparkchain.identifiers.tx import tx_id
from sparkchain.ledger import blocks, smt, validators
from sparkchain.ledger.genesis import Genesis
from sparkchain.ledger.proof import ProofError, verify_certified_header
from sparkchain.ledger.smt_walk import (
    CheckedTree,
    LeafMismatch,
    check_all_matched,
    checked_tree,
    leaf_nodes,
    match_leaves,
)
from sparkchain.node import schema
from sparkchain.node.snapshot_leaves import (
    DerivedLeaves,
    UndecodableRecord,
    derive_leaves,
    derive_record_leaves,
)
from sparkchain.node.snapshots import (
    SNAPSHOT_FORMAT_WITH_LEAVES,
    SNAPSHOT_FORMATS_READ,
    chunk_hash,
    decode_chunk,
)
from sparkchain.proto import api_pb2, peer_pb2
from sparkchain.proto import types_pb2 as pb

# what a snapshot may hold (node/snapshots.py); of META, only the validator schedule
_SNAPSHOT_NAMESPACES = frozenset(
    (schema.META, schema.VALIDATOR_SET, schema.PREFIX, schema.RECORD, schema.TREE_NODE)
)


def invalid(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_PROOF, message)


@dataclass(frozen=True, slots=True, eq=False)
class SnapshotEntries:
    """A snapshot's entries in strictly increasing key order, as two lists side by side:
    at 200,000 identifiers there are ~475k, and every pass over them is in C where it can
    be (no tuple per entry, no bytecode loop per put or per hash)."""

    keys: list[bytes]
    values: list[bytes]
    chunk_entries: list[int]  # how many entries each chunk held, in order

    def span(self, namespace: bytes) -> tuple[int, int]:
        """The slice of the entries whose keys are in `namespace`."""
        keys = self.keys
        return bisect_left(keys, namespace), bisect_left(keys, bytes([namespace[0] + 1]))

    def namespace(self, namespace: bytes) -> tuple[list[bytes], list[bytes]]:
        """The keys and values in `namespace`."""
        lo, hi = self.span(namespace)
        return self.keys[lo:hi], self.values[lo:hi]


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedSnapshot:
    manifest: peer_pb2.SnapshotManifest
    header: pb.BlockHeader
    base: peer_pb2.CommittedBlock  # block H with its certificate
    changes: tuple[peer_pb2.CommittedBlock, ...]  # the blocks that changed the set, by height
    entries: SnapshotEntries  # tree nodes included (format 1: with the leaves)
    # (hash, encoded) of the tree's upper internal nodes, which the tree cache holds
    upper_nodes: list[tuple[bytes, bytes]]
    # the storage keys and encodings of the tree's leaves, built from the entries, when
    # the snapshot does not carry them (format 2)
    leaves: tuple[list[bytes], list[bytes]]
    # the owner index key of each record, in the records' order
    record_owner_keys: list[bytes]


def check_manifest(manifest: peer_pb2.SnapshotManifest) -> None:
    """The form of a manifest, before anything it names is fetched."""
    if manifest.format not in SNAPSHOT_FORMATS_READ:
        raise invalid(f"snapshot {manifest.height}: format {manifest.format} is not known here")
    if manifest.height < 1:
        raise invalid("snapshot height must be 1 or more")
    if len(manifest.block_hash) != 32 or len(manifest.state_root) != 32:
        raise invalid(f"snapshot {manifest.height}: block hash and state root are 32 bytes")
    if not 1 <= len(manifest.chunk_hashes) <= MAX_SNAPSHOT_CHUNKS:
        raise invalid(
            f"snapshot {manifest.height}: {len(manifest.chunk_hashes)} chunks "
            f"(1 to {MAX_SNAPSHOT_CHUNKS})"
        )
    if any(len(h) != 32 for h in manifest.chunk_hashes):
        raise invalid(f"snapshot {manifest.height}: chunk hashes are 32 bytes")


def check_chunk(
    manifest: peer_pb2.SnapshotManifest, index: int, chunk: bytes, hash_fn: HashFunction
) -> None:
    """A chunk is the one the manifest names (hashed with `hash_fn`, the chain's hash), or
    it is refused."""
    got = chunk_hash(chunk, hash_fn)
    if got != manifest.chunk_hashes[index]:
        raise invalid(
            f"chunk {index} of snapshot {manifest.height} hashes to {got.hex()}, the "
            f"manifest says {manifest.chunk_hashes[index].hex()}"
        )


def decode_entries(chunks: Sequence[bytes]) -> SnapshotEntries:
    """Every entry, checked to be of a snapshot namespace, in strictly increasing key order
    (so each once)."""
    keys: list[bytes] = []
    values: list[bytes] = []
    chunk_entries = []
    for chunk in chunks:
        chunk_keys, chunk_values = decode_chunk(chunk)
        keys += chunk_keys
        values += chunk_values
        chunk_entries.append(len(chunk_keys))
    if not all(map(operator.lt, keys, keys[1:])):
        bad = next(b for a, b in pairwise(keys) if not a < b)
        raise invalid(f"snapshot: {schema.describe_key(bad)} is out of key order")
    entries = SnapshotEntries(keys, values, chunk_entries)
    # in key order, the keys of the snapshot namespaces are all the keys iff their spans
    # add up to them all
    if sum(hi - lo for lo, hi in map(entries.span, _SNAPSHOT_NAMESPACES)) != len(keys):
        stray = next(key for key in keys if key[:1] not in _SNAPSHOT_NAMESPACES)
        raise invalid(f"snapshot: the {schema.describe_key(stray[:1])} namespace is not state")
    # in key order the metadata comes first
    if [key for key in keys[:2] if key[:1] == schema.META] not in (
        [],
        [schema.META_VALIDATOR_SCHEDULE],
    ):
        raise invalid("snapshot: of the chain metadata, only the validator schedule is state")
    return entries


def change_heights(keys: Iterable[bytes], height: int) -> list[int]:
    """The blocks whose certified headers prove the set changes up to block `height` + 1,
    from a snapshot's keys: for each set scheduled from E ≤ height + 1, block E - 1."""
    found = []
    for key in keys:
        if key[:1] == schema.VALIDATOR_SET:
            from_height = schema.height_from_bytes(key[1:])
            if 2 <= from_height <= height + 1:
                found.append(from_height - 1)
    return found


def snapshot_change_heights(chunks: Sequence[bytes], height: int) -> list[int]:
    """`change_heights` of the keys of `chunks` (a snapshot's, in key order), decoding only
    the last chunks: the validator sets' namespace sorts after every other. Chunks out of
    order give a list that `verify_snapshot` then refuses."""
    keys: list[bytes] = []
    for chunk in reversed(chunks):
        chunk_keys, _ = decode_chunk(chunk)
        keys = chunk_keys + keys
        if chunk_keys and chunk_keys[0] < schema.VALIDATOR_SET:
            break
    return change_heights(keys, height)


def verify_snapshot(
    genesis: Genesis,
    manifest: peer_pb2.SnapshotManifest,
    chunks: Sequence[bytes],
    base: peer_pb2.CommittedBlock,
    changes: Sequence[peer_pb2.CommittedBlock],
) -> VerifiedSnapshot:
    """Every link of the module docstring; raises SparkError(INVALID_PROOF) at the first
    that fails, naming it."""
    return check_snapshot_state(certify_snapshot(genesis, manifest, chunks, base, changes))


@dataclass(frozen=True, slots=True, eq=False)
class CertifiedSnapshot:
    """A snapshot whose chunks are the manifest's and whose block H is certified by the
    validators walked from the genesis; its state is still to be checked against H's
    state root (`check_snapshot_state`)."""

    genesis: Genesis
    manifest: peer_pb2.SnapshotManifest
    header: pb.BlockHeader
    base: peer_pb2.CommittedBlock
    changes: tuple[peer_pb2.CommittedBlock, ...]
    entries: SnapshotEntries
    sets: dict[int, pb.ScheduledSet]  # the validator sets in the entries, by first height


def certify_snapshot(
    genesis: Genesis,
    manifest: peer_pb2.SnapshotManifest,
    chunks: Sequence[bytes],
    base: peer_pb2.CommittedBlock,
    changes: Sequence[peer_pb2.CommittedBlock],
) -> CertifiedSnapshot:
    """The links of the module docstring up to the certified header, and the chunks'
    entries in key order; SparkError(INVALID_PROOF) naming the first that fails."""
    hash_fn = genesis.hash_fn
    check_manifest(manifest)
    if len(chunks) != len(manifest.chunk_hashes):
        raise invalid(f"snapshot {manifest.height}: {len(chunks)} chunks given")
    for index, chunk in enumerate(chunks):
        check_chunk(manifest, index, chunk, hash_fn)
    entries = decode_entries(chunks)
    sets = {
        schema.height_from_bytes(key[1:]): pb.ScheduledSet.FromString(value)
        for key, value in zip(*entries.namespace(schema.VALIDATOR_SET), strict=True)
    }
    for block in (base, *changes):
        _check_body(block, hash_fn)
    proof = api_pb2.ResolveProof(header=base.block.header, commit=base.commit)
    for change in changes:
        header = pb.BlockHeader.FromString(change.block.header)
        scheduled = sets.get(header.height + 1)
        if scheduled is None:
            raise invalid(f"snapshot: block {header.height} changes no validator set")
        proof.validator_changes.append(
            api_pb2.ValidatorChange(
                header=change.block.header,
                commit=change.commit,
                validators=[v.public_key for v in scheduled.validators],
            )
        )
    try:
        header = verify_certified_header(genesis.validator_keys, genesis.chain_id, proof, hash_fn)
    except ProofError as error:
        raise invalid(f"snapshot {manifest.height}: header: {error.message}") from error
    if header.height != manifest.height or base.commit.block_hash != manifest.block_hash:
        raise invalid(
            f"snapshot manifest names block {manifest.height} ({manifest.block_hash.hex()}), "
            f"the certified header is block {header.height} ({base.commit.block_hash.hex()})"
        )
    if header.state_root != manifest.state_root:
        raise invalid(f"snapshot {manifest.height}: manifest state root is not the header's")
    return CertifiedSnapshot(genesis, manifest, header, base, tuple(changes), entries, sets)


def check_snapshot_state(certified: CertifiedSnapshot) -> VerifiedSnapshot:
    """The rest of the links: the entries are exactly the state under the certified
    header's state root, and the sets scheduled after H+1 are the schedule's."""
    entries, header = certified.entries, certified.header
    with_leaves = certified.manifest.format == SNAPSHOT_FORMAT_WITH_LEAVES
    state = _check_state(
        entries, header, certified.genesis.hash_algorithm, leaves_given=with_leaves
    )
    _check_future_sets(entries, certified.sets, header.height)
    return VerifiedSnapshot(
        certified.manifest,
        header,
        certified.base,
        certified.changes,
        entries,
        state.upper_nodes,
        state.leaves,
        state.record_owner_keys,
    )


def _check_body(committed: peer_pb2.CommittedBlock, hash_fn: HashFunction) -> None:
    header = pb.BlockHeader.FromString(committed.block.header)
    if committed.commit.block_hash != blocks.block_hash(committed.block.header, hash_fn):
        raise invalid(f"snapshot: the certificate of block {header.height} is for another block")
    tx_ids = [tx_id(signed, hash_fn) for signed in committed.block.txs]
    if blocks.tx_root(tx_ids, hash_fn) != header.tx_root:
        raise invalid(f"snapshot: the txs of block {header.height} are not its header's")


def _check_state(
    entries: SnapshotEntries,
    header: pb.BlockHeader,
    algorithm: HashAlgorithm,
    *,
    leaves_given: bool,
) -> _CheckedState:
    """The tree nodes are the tree under the certified state root (smt_walk), and its
    leaves are exactly the records, prefixes and schedule given, value for value (and,
    when `leaves_given`, the leaf nodes given). The records' leaves are derived on both
    cores while the tree is checked (node/snapshot_leaves.py)."""
    hash_fn = hash_function(algorithm)
    node_keys, node_values = entries.namespace(schema.TREE_NODE)
    nodes = dict(zip(map(schema.WITHOUT_NAMESPACE, node_keys), node_values, strict=True))

    def check_tree() -> CheckedTree:
        try:
            return checked_tree(header.state_root, nodes, hash_fn, smt.CACHE_MAX_DEPTH)
        except SparkError as error:
            raise invalid(f"snapshot {header.height}: {error.message}") from error

    record_keys, record_values = entries.namespace(schema.RECORD)
    try:
        records, tree = derive_record_leaves(record_keys, record_values, algorithm, check_tree)
    except UndecodableRecord as error:
        raise _not_in_state(error.args[0], header) from None
    prefix_keys, prefix_values = entries.namespace(schema.PREFIX)
    state = [
        (prefix_keys, derive_leaves(TREE_PREFIX_NAMESPACE, prefix_keys, prefix_values, algorithm)),
        (record_keys, records),
    ]
    if entries.keys and entries.keys[0] == schema.META_VALIDATOR_SCHEDULE:
        state.append(([entries.keys[0]], _schedule_leaf(entries.values[0], hash_fn)))
    # a tree of one key is its leaf: every format gives the root
    given = leaves_given or (tree.internal_nodes == 0 and bool(nodes))
    for keys, derived in state:
        mismatch = match_leaves(
            tree, nodes, derived.tree_keys, derived.leaves, derived.leaf_hashes, given=given
        )
        _check_leaves(mismatch, keys, header)
    matched = sum(len(keys) for keys, _ in state)
    try:
        check_all_matched(tree, nodes, matched if given else 0)
    except SparkError as error:
        raise invalid(f"snapshot {header.height}: {error.message}") from error
    leaves: tuple[list[bytes], list[bytes]] = ([], [])  # format 1: written with the entries
    if not leaves_given:
        leaf_hashes = [h for _, derived in state for h in derived.leaf_hashes]
        leaf_values = [v for _, derived in state for v in derived.leaves]
        leaves = (list(map(schema.TREE_NODE.__add__, leaf_hashes)), leaf_values)
    return _CheckedState(tree.upper_nodes, leaves, records.owner_keys)


class _CheckedState(NamedTuple):
    upper_nodes: list[tuple[bytes, bytes]]
    leaves: tuple[list[bytes], list[bytes]]
    record_owner_keys: list[bytes]


def _schedule_leaf(schedule: bytes, hash_fn: HashFunction) -> DerivedLeaves:
    at = [smt.validators_tree_key(hash_fn)]
    leaves = leaf_nodes(at, [smt.value_hash(schedule, hash_fn)])
    return DerivedLeaves(at, leaves, list(map(hash_fn, leaves)), [])


def _check_leaves(mismatch: LeafMismatch | None, keys: list[bytes], header: pb.BlockHeader) -> None:
    if mismatch is None:
        return
    key = keys[mismatch.at]
    if mismatch.given_leaf is None:
        raise _not_in_state(key, header)
    raise invalid(
        f"snapshot {header.height}: state tree node {mismatch.given_leaf.hex()} is not the "
        f"leaf of {schema.describe_key(key)}"
    )


def _not_in_state(key: bytes, header: pb.BlockHeader) -> SparkError:
    return invalid(
        f"snapshot {header.height}: {schema.describe_key(key)} is not in the state that "
        f"block {header.height} certifies (root {header.state_root.hex()})"
    )


def _check_future_sets(
    entries: SnapshotEntries, sets: dict[int, pb.ScheduledSet], height: int
) -> None:
    """Sets that sign after H+1 are in the schedule the state root covers, as given."""
    scheduled = {}
    if entries.keys and entries.keys[0] == schema.META_VALIDATOR_SCHEDULE:
        schedule = validators.decode_schedule(entries.values[0], ErrorCode.INVALID_PROOF)
        scheduled = {s.from_height: s for s in schedule.sets}
    for from_height, given in sets.items():
        if from_height > height + 1 and scheduled.get(from_height) != given:
            raise invalid(f"snapshot: the set from block {from_height} is not the scheduled one")
