"""Client-side check of a resolution proof (DESIGN §7): trust the genesis, not the node.

The chain of evidence, each link checked here:
    genesis validators --certificate--> block hash = SHA-256(header bytes)
    header.state_root  --tree proof-->  the record bytes (or the absence of any record)
    record bytes       --key-->         the identifier asked about
Nothing in it needs a node: a CLI or a light client runs it with the genesis file alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier
from sparkchain.ledger import blocks, smt
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb


def _invalid(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_PROOF, message)


def verify_resolution(
    genesis_validators: Sequence[bytes],
    chain_id: str,
    identifier: str,
    proof: api_pb2.ResolveProof,
) -> tuple[pb.Record | None, int]:
    """The record proven for `identifier` (None: proven absent) and the height it holds at.

    Raises SparkError(INVALID_PROOF) naming the first link that fails, or
    INVALID_IDENTIFIER for a malformed identifier.
    """
    record, header = verify_resolution_header(genesis_validators, chain_id, identifier, proof)
    return record, header.height


def verify_resolution_header(
    genesis_validators: Sequence[bytes],
    chain_id: str,
    identifier: str,
    proof: api_pb2.ResolveProof,
) -> tuple[pb.Record | None, pb.BlockHeader]:
    """As `verify_resolution`, with the whole certified header the answer holds at.

    What a client can and cannot know: the answer was the state right after that block
    (height, time_ms), as a quorum of the genesis validators committed it. It cannot know
    that no later block changed it: a node may replay an older genuine proof (before a
    revoke, a transfer, a new URL). Show the block time, and bound its age where the chain
    makes blocks at a known least rate (its empty-block interval).
    """
    key = parse_identifier(identifier).key
    if not proof.header:
        raise _invalid("proof has no block header")
    header = pb.BlockHeader()
    try:
        header.ParseFromString(proof.header)
    except DecodeError as exc:
        raise _invalid(f"header does not decode: {exc}") from None
    if header.chain_id != chain_id:
        raise _invalid(f"header is for chain {header.chain_id!r}, expected {chain_id!r}")
    expected_validators = blocks.validators_hash(genesis_validators)
    if header.validators_hash != expected_validators:
        raise _invalid("header names another validator set than the genesis")
    _check_certificate(genesis_validators, chain_id, header, proof)
    value = proof.record_bytes or None
    tree_key = smt.record_tree_key(key)
    if not smt.verify_proof(header.state_root, tree_key, value, proof.state_proof):
        shown = "absence" if value is None else "the record"
        raise _invalid(
            f"state proof does not show {shown} of {identifier} under the state root "
            f"of block {header.height}"
        )
    if value is None:
        return None, header
    record = pb.Record()
    try:
        record.ParseFromString(value)
    except DecodeError as exc:
        raise _invalid(f"record bytes do not decode: {exc}") from None
    if record.key != key:
        # the tree key binds the record to its key already; this guards the record content
        raise _invalid(f"proven record is {record.key!r}, not {key!r}")
    return record, header


def _check_certificate(
    validators: Sequence[bytes],
    chain_id: str,
    header: pb.BlockHeader,
    proof: api_pb2.ResolveProof,
) -> None:
    if not proof.HasField("commit"):
        raise _invalid(f"proof has no certificate for block {header.height}")
    commit = proof.commit
    header_hash = blocks.block_hash(proof.header)
    if commit.height != header.height or commit.block_hash != header_hash:
        raise _invalid(
            f"certificate commits block {commit.height} ({commit.block_hash.hex()}), "
            f"not the header's block {header.height} ({header_hash.hex()})"
        )
    try:
        blocks.verify_commit_certificate(chain_id, validators, commit)
    except SparkError as error:
        raise _invalid(f"certificate: {error.message}") from error
