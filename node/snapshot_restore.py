"""Check a state snapshot from untrusted peers, then write it into a new ledger.

Nothing a peer sends is trusted; the chain of evidence, each link checked here before
anything is written (`verify_snapshot`):
    genesis validators --validator changes--> the validators of block H
        (each change: the certified header of the block before the new set signs, found
        through the snapshot's `v` entries; ledger/proof.py `verify_certified_header`)
    those validators --certificate--> block H's header (height, hash as the manifest says)
    every chunk      --SHA-256-->     the manifest's chunk hashes
    the state tree rebuilt from the chunks' records, prefixes and schedule --> H's state_root
The bodies of the blocks kept (H and the set changes) must match their headers' tx roots.
Sets scheduled to sign after H+1 (in the snapshot's `v` entries) must be those of the
schedule that the state root covers.

`write_snapshot` then writes it into a ledger that is still at the genesis (height 0): the
entries, the indexes derived from them, the tree nodes, the kept blocks with their
certificates, and finally, in one synced batch, the head at H and the base H (schema
META_BASE). A marker (META_RESTORING) is set first and cleared by that last batch, so an
interrupted write is never taken for a chain (node/ledger.py refuses to open it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_SNAPSHOT_CHUNKS
from sparkchain.identifiers.tx import tx_id
from sparkchain.ledger import blocks, smt, validators
from sparkchain.ledger.genesis import Genesis
from sparkchain.ledger.proof import ProofError, verify_certified_header
from sparkchain.ledger.records import decode_prefix, decode_record
from sparkchain.node import schema
from sparkchain.node.ledger import Ledger
from sparkchain.node.snapshots import SNAPSHOT_FORMAT, chunk_hash, decode_chunk
from sparkchain.proto import api_pb2, peer_pb2
from sparkchain.proto import types_pb2 as pb

WRITE_BATCH_ENTRIES = 50_000  # puts per LevelDB batch while writing a snapshot
# namespaces in the order format 1 emits them (node/snapshots.py)
_NAMESPACE_RANK = {
    schema.META_VALIDATOR_SCHEDULE[:1]: 0,
    schema.VALIDATOR_SET: 1,
    schema.PREFIX: 2,
    schema.RECORD: 3,
}
# what a ledger at the genesis holds besides its metadata; cleared before a snapshot is written
_STATE_NAMESPACES = (
    schema.RECORD,
    schema.PREFIX,
    schema.PREFIX_CHILD,
    schema.OWNER,
    schema.TREE_NODE,
    schema.VALIDATOR_SET,
    schema.HISTORY,
    schema.CHANGES,
    schema.TX,
    schema.BLOCK,
    schema.CERTIFICATE,
    schema.BLOCK_HASH,
)


def invalid(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_PROOF, message)


@dataclass(frozen=True, slots=True)
class VerifiedSnapshot:
    manifest: peer_pb2.SnapshotManifest
    header: pb.BlockHeader
    base: peer_pb2.CommittedBlock  # block H with its certificate
    changes: tuple[peer_pb2.CommittedBlock, ...]  # the blocks that changed the set, by height
    entries: tuple[tuple[bytes, bytes], ...]
    tree_nodes: dict[bytes, bytes]


def check_manifest(manifest: peer_pb2.SnapshotManifest) -> None:
    """The form of a manifest, before anything it names is fetched."""
    if manifest.format != SNAPSHOT_FORMAT:
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


def check_chunk(manifest: peer_pb2.SnapshotManifest, index: int, chunk: bytes) -> None:
    """A chunk is the one the manifest names, or it is refused."""
    got = chunk_hash(chunk)
    if got != manifest.chunk_hashes[index]:
        raise invalid(
            f"chunk {index} of snapshot {manifest.height} hashes to {got.hex()}, the "
            f"manifest says {manifest.chunk_hashes[index].hex()}"
        )


def decode_entries(chunks: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
    """Every entry, checked to be of a snapshot namespace, in format 1's order, once."""
    entries: list[tuple[bytes, bytes]] = []
    last_rank, last_key = -1, b""
    for index, chunk in enumerate(chunks):
        for key, value in decode_chunk(chunk):
            rank = _NAMESPACE_RANK.get(key[:1])
            if rank == 0 and key != schema.META_VALIDATOR_SCHEDULE:
                rank = None
            if rank is None:
                raise invalid(f"snapshot chunk {index}: {schema.describe_key(key)} is not state")
            if rank < last_rank or (rank == last_rank and key <= last_key):
                raise invalid(f"snapshot chunk {index}: {schema.describe_key(key)} out of order")
            last_rank, last_key = rank, key
            entries.append((key, value))
    return entries


def change_heights(entries: Sequence[tuple[bytes, bytes]], height: int) -> list[int]:
    """The blocks whose certified headers prove the set changes up to block `height` + 1:
    for each set scheduled from E ≤ height + 1, block E - 1."""
    found = []
    for key, _ in entries:
        if key[:1] == schema.VALIDATOR_SET:
            from_height = schema.height_from_bytes(key[1:])
            if 2 <= from_height <= height + 1:
                found.append(from_height - 1)
    return found


def verify_snapshot(
    genesis: Genesis,
    manifest: peer_pb2.SnapshotManifest,
    chunks: Sequence[bytes],
    base: peer_pb2.CommittedBlock,
    changes: Sequence[peer_pb2.CommittedBlock],
) -> VerifiedSnapshot:
    """Every link of the module docstring; raises SparkError(INVALID_PROOF) at the first
    that fails, naming it."""
    check_manifest(manifest)
    if len(chunks) != len(manifest.chunk_hashes):
        raise invalid(f"snapshot {manifest.height}: {len(chunks)} chunks given")
    for index, chunk in enumerate(chunks):
        check_chunk(manifest, index, chunk)
    entries = decode_entries(chunks)
    sets = {
        schema.height_from_bytes(key[1:]): pb.ScheduledSet.FromString(value)
        for key, value in entries
        if key[:1] == schema.VALIDATOR_SET
    }
    for block in (base, *changes):
        _check_body(block)
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
        header = verify_certified_header(genesis.validator_keys, genesis.chain_id, proof)
    except ProofError as error:
        raise invalid(f"snapshot {manifest.height}: header: {error.message}") from error
    if header.height != manifest.height or base.commit.block_hash != manifest.block_hash:
        raise invalid(
            f"snapshot manifest names block {manifest.height} ({manifest.block_hash.hex()}), "
            f"the certified header is block {header.height} ({base.commit.block_hash.hex()})"
        )
    if header.state_root != manifest.state_root:
        raise invalid(f"snapshot {manifest.height}: manifest state root is not the header's")
    tree = _rebuilt_tree(entries)
    if tree.root != header.state_root:
        raise invalid(
            f"snapshot {manifest.height}: the state in its chunks has root {tree.root.hex()}, "
            f"block {header.height} certifies {header.state_root.hex()}"
        )
    _check_future_sets(entries, sets, header.height)
    return VerifiedSnapshot(manifest, header, base, tuple(changes), tuple(entries), tree.new_nodes)


def _check_body(committed: peer_pb2.CommittedBlock) -> None:
    header = pb.BlockHeader.FromString(committed.block.header)
    if committed.commit.block_hash != blocks.block_hash(committed.block.header):
        raise invalid(f"snapshot: the certificate of block {header.height} is for another block")
    if blocks.tx_root([tx_id(signed) for signed in committed.block.txs]) != header.tx_root:
        raise invalid(f"snapshot: the txs of block {header.height} are not its header's")


def _rebuilt_tree(entries: Sequence[tuple[bytes, bytes]]) -> smt.TreeUpdate:
    changes: dict[bytes, bytes | None] = {}
    record_tree_key, prefix_tree_key = smt.record_tree_key, smt.prefix_tree_key
    for key, value in entries:
        kind = key[:1]
        if kind == schema.RECORD:
            changes[record_tree_key(key[1:].decode("utf-8"))] = value
        elif kind == schema.PREFIX:
            changes[prefix_tree_key(key[1:].decode("utf-8"))] = value
        elif key == schema.META_VALIDATOR_SCHEDULE:
            changes[smt.validators_tree_key()] = value
    return smt.apply(_NoNodes(), smt.EMPTY_ROOT, changes)


class _NoNodes:
    def get(self, node_hash: bytes, /) -> bytes | None:
        return None


def _check_future_sets(
    entries: Sequence[tuple[bytes, bytes]], sets: dict[int, pb.ScheduledSet], height: int
) -> None:
    """Sets that sign after H+1 are in the schedule the state root covers, as given."""
    scheduled = {}
    if entries and entries[0][0] == schema.META_VALIDATOR_SCHEDULE:
        schedule = validators.decode_schedule(entries[0][1], ErrorCode.INVALID_PROOF)
        scheduled = {s.from_height: s for s in schedule.sets}
    for from_height, given in sets.items():
        if from_height > height + 1 and scheduled.get(from_height) != given:
            raise invalid(f"snapshot: the set from block {from_height} is not the scheduled one")


def write_snapshot(ledger: Ledger, verified: VerifiedSnapshot) -> None:
    """Write `verified` into `ledger`, which must be at the genesis (height 0)."""
    if ledger.height != 0:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"a snapshot is written only into a new ledger; this one is at block {ledger.height}",
        )
    db = ledger.db
    height = verified.header.height
    db.put(schema.META_RESTORING, schema.height_bytes(height), sync=True)
    with db.write_batch() as batch:
        for namespace in _STATE_NAMESPACES:
            for key in db.iterator(prefix=namespace, include_value=False):
                batch.delete(key)
        batch.delete(schema.META_VALIDATOR_SCHEDULE)
    batch = db.write_batch()
    pending = 0
    for key, value in _all_puts(verified):
        batch.put(key, value)
        pending += 1
        if pending == WRITE_BATCH_ENTRIES:
            batch.write()
            batch, pending = db.write_batch(), 0
    batch.write()
    with db.write_batch(sync=True) as last:
        last.put(
            schema.META_HEAD,
            schema.head_bytes(height, verified.manifest.block_hash, verified.header.state_root),
        )
        last.put(schema.META_BASE, schema.height_bytes(height))
        last.delete(schema.META_RESTORING)
    ledger.reload()


def _all_puts(verified: VerifiedSnapshot) -> Iterator[tuple[bytes, bytes]]:
    owner_key = schema.owner_key
    for key, value in verified.entries:
        yield (key, value)
        kind = key[:1]
        if kind == schema.RECORD:
            yield (
                owner_key(decode_record(value).owner, schema.OWNED_RECORD, key[1:].decode()),
                b"",
            )
        elif kind == schema.PREFIX:
            prefix_key = key[1:].decode("utf-8")
            owner = decode_prefix(value).owner
            yield (owner_key(owner, schema.OWNED_PREFIX, prefix_key), b"")
            parent = prefix_key.rsplit(".", 1)[0] if "." in prefix_key else ""
            yield (schema.prefix_child_key(parent, prefix_key), b"")
    for node_hash, node in verified.tree_nodes.items():
        yield (schema.tree_node_key(node_hash), node)
    for committed in (verified.base, *verified.changes):
        block_height = committed.commit.height
        yield (
            schema.block_key(block_height),
            committed.block.SerializeToString(deterministic=True),
        )
        yield (
            schema.block_hash_key(committed.commit.block_hash),
            schema.height_bytes(block_height),
        )
        yield (
            schema.certificate_key(block_height),
            committed.commit.SerializeToString(deterministic=True),
        )
