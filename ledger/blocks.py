"""Block headers: the tx root, hashes, and `validate_header`, every check a header must pass
(DESIGN §5).

A block hash is SHA-256 of the header bytes exactly as received. Block 1 links to the
genesis: its `prev_hash` is the genesis hash (SHA-256 of the canonical genesis, see
ledger/genesis.py) and it carries no `last_commit` (its `last_commit_hash` is empty). Every
later block carries the certificate of the block before it, and `last_commit_hash` is
SHA-256 of that certificate's serialization.

A header's `validators_hash` commits to the set that signs the NEXT height (DESIGN §12):
the chain fixes each set two heights ahead (ledger/validators.py), so when block H is built
the set of H + 1 is known, and a verifier that trusts header H learns from it who must sign
H + 1. While the set never changes this is the genesis set's hash in every header.

SHA-256 here stands for the chain's hash: SM3 when the genesis chose it (issue 16). Every
function that hashes takes `hash_fn` (identifiers/hashing.py), SHA-256 by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.identifiers.tags import MERKLE_LEAF, MERKLE_NODE
from sparkchain.proto import types_pb2 as pb


def tx_root(tx_ids: Sequence[bytes], hash_fn: HashFunction = sha256) -> bytes:
    """RFC 6962 Merkle tree hash of the tx ids, in block order (empty: SHA-256 of b"").

    Built level by level: adjacent pairs are hashed together and an odd last node moves up
    unchanged, which yields exactly RFC 6962's split at the largest power of two below n.
    """
    if not tx_ids:
        return hash_fn(b"")
    level = [hash_fn(MERKLE_LEAF + tx_id) for tx_id in tx_ids]
    while len(level) > 1:
        paired = [
            hash_fn(MERKLE_NODE + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def validators_hash(validators: Sequence[bytes], hash_fn: HashFunction = sha256) -> bytes:
    """SHA-256 of the validators' 32-byte public keys concatenated in proposer order."""
    return hash_fn(b"".join(validators))


def certificate_hash(
    certificate: pb.CommitCertificate | None, hash_fn: HashFunction = sha256
) -> bytes:
    """What a header's `last_commit_hash` holds: empty for no certificate (block 1)."""
    if certificate is None:
        return b""
    return hash_fn(certificate.SerializeToString(deterministic=True))


def verify_commit_certificate(
    chain_id: str, validators: Sequence[bytes], certificate: pb.CommitCertificate
) -> None:
    """Raise SparkError(INVALID_CERTIFICATE) unless a quorum of `validators` signed the
    certificate's precommits (consensus.certificate does the checking)."""
    # imported here: consensus is written alongside the ledger, and the ledger's other
    # checks must not depend on it being importable
    from sparkchain.consensus.certificate import verify_certificate
    from sparkchain.consensus.messages import CommitCertificate, CommitSig

    verify_certificate(
        chain_id,
        validators,
        CommitCertificate(
            certificate.height,
            certificate.round,
            certificate.block_hash,
            tuple(CommitSig(s.validator, s.signature) for s in certificate.signatures),
        ),
    )


def block_hash(header_bytes: bytes, hash_fn: HashFunction = sha256) -> bytes:
    return hash_fn(header_bytes)


def encode_header(header: pb.BlockHeader) -> bytes:
    return header.SerializeToString(deterministic=True)


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    block: pb.Block
    header: pb.BlockHeader
    block_hash: bytes
    last_commit: pb.CommitCertificate | None


def _invalid(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_BLOCK, message)


def decode_block(block_bytes: bytes, hash_fn: HashFunction = sha256) -> DecodedBlock:
    block = pb.Block()
    header = pb.BlockHeader()
    try:
        block.ParseFromString(block_bytes)
        header.ParseFromString(block.header)
    except DecodeError as exc:
        raise _invalid(f"block does not decode: {exc}") from None
    last_commit = block.last_commit if block.HasField("last_commit") else None
    return DecodedBlock(block, header, block_hash(block.header, hash_fn), last_commit)


def decode_certificate(raw: bytes) -> pb.CommitCertificate:
    certificate = pb.CommitCertificate()
    try:
        certificate.ParseFromString(raw)
    except DecodeError as exc:
        raise SparkError(
            ErrorCode.INVALID_CERTIFICATE, f"certificate does not decode: {exc}"
        ) from None
    return certificate


@dataclass(frozen=True, slots=True)
class Parent:
    """What the next header must link to: the last committed block, or the genesis."""

    chain_id: str
    height: int
    block_hash: bytes
    time_ms: int
    validators: tuple[bytes, ...]  # the set that signs the next block (height + 1)
    # what the next block's header must hold: the hash of the set of height + 2
    validators_hash: bytes
    hash_fn: HashFunction = sha256  # the chain's hash, from its genesis


def _mismatch(field: str, expected: object, got: object) -> SparkError:
    return _invalid(f"{field}: expected {_show(expected)} got {_show(got)}")


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex() if value else "(empty)"
    return repr(value)


def validate_header(
    block: DecodedBlock,
    parent: Parent,
    *,
    check_certificate: Callable[[pb.CommitCertificate], None],
    execute: Callable[[], tuple[Sequence[bytes], bytes]],
) -> None:
    """Every check of a block's header, cheapest first; the first that fails raises
    INVALID_BLOCK naming the field (`<field>: expected X got Y`).

    1. encoding: the header bytes are the canonical (deterministic) encoding;
    2. linkage to `parent`: chain id, height, prev_hash, a later time, the hash of the set
       that signs the height after this one, a proposer from the set of this one;
    3. last_commit: none for block 1; otherwise a certificate of the parent block whose
       hash is `last_commit_hash` and which `check_certificate` accepts (a quorum of the
       parent's validators signed it; it raises if not);
    4. results, which cost an execution: `execute()` applies the block's txs to the
       parent's state and returns (tx ids, state root after them); they must give the
       header's `tx_root` and `state_root`.
    """
    header = block.header
    if encode_header(header) != block.block.header:
        # the certified hash covers the header bytes as received; nodes serve the header
        # re-encoded, so only the one canonical encoding keeps proofs of this block checkable
        raise _invalid("header: not in canonical encoding (deterministic protobuf)")
    _check_linkage(header, parent)
    _check_last_commit(header, block.last_commit, parent)
    if block.last_commit is not None:
        check_certificate(block.last_commit)
    tx_ids, state_root = execute()
    expected_tx_root = tx_root(tx_ids, parent.hash_fn)
    if header.tx_root != expected_tx_root:
        raise _mismatch("tx_root", expected_tx_root, header.tx_root)
    if header.state_root != state_root:
        raise _mismatch("state_root", state_root, header.state_root)


def _check_linkage(header: pb.BlockHeader, parent: Parent) -> None:
    if header.chain_id != parent.chain_id:
        raise _mismatch("chain_id", parent.chain_id, header.chain_id)
    if header.height != parent.height + 1:
        raise _mismatch("height", parent.height + 1, header.height)
    if header.prev_hash != parent.block_hash:
        raise _mismatch("prev_hash", parent.block_hash, header.prev_hash)
    if header.time_ms <= parent.time_ms:
        raise _invalid(
            f"time_ms: expected more than {parent.time_ms} (the previous block) "
            f"got {header.time_ms}"
        )
    if header.validators_hash != parent.validators_hash:
        raise _mismatch("validators_hash", parent.validators_hash, header.validators_hash)
    if header.proposer not in parent.validators:
        raise _invalid(f"proposer: {_show(header.proposer)} is not a validator")


def _check_last_commit(
    header: pb.BlockHeader, last_commit: pb.CommitCertificate | None, parent: Parent
) -> None:
    if parent.height == 0:
        if last_commit is not None:
            raise _invalid("last_commit: expected none for block 1 got a certificate")
    else:
        if last_commit is None:
            raise _invalid(f"last_commit: expected the certificate of block {parent.height}")
        if last_commit.height != parent.height:
            raise _mismatch("last_commit.height", parent.height, last_commit.height)
        if last_commit.block_hash != parent.block_hash:
            raise _mismatch("last_commit.block_hash", parent.block_hash, last_commit.block_hash)
    expected = certificate_hash(last_commit, parent.hash_fn)
    if header.last_commit_hash != expected:
        raise _mismatch("last_commit_hash", expected, header.last_commit_hash)


def build_header(
    parent: Parent,
    time_ms: int,
    proposer: bytes,
    last_commit: pb.CommitCertificate | None,
    tx_ids: Sequence[bytes],
    state_root: bytes,
) -> pb.BlockHeader:
    return pb.BlockHeader(
        chain_id=parent.chain_id,
        height=parent.height + 1,
        time_ms=time_ms,
        prev_hash=parent.block_hash,
        last_commit_hash=certificate_hash(last_commit, parent.hash_fn),
        tx_root=tx_root(tx_ids, parent.hash_fn),
        state_root=state_root,
        validators_hash=parent.validators_hash,
        proposer=proposer,
    )
