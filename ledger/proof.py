"""Client-side check of a resolution proof (DESIGN §7): trust the genesis, not the node.

The chain of evidence, each link checked here:
    genesis validators --validator changes--> the validators of the header's height
    those validators --certificate--> block hash = H(header bytes)
(H is the chain's hash, SHA-256 or SM3 as its genesis chose: every function takes `hash_fn`.)
    header.state_root  --tree proof-->  the record bytes (or the absence of any record)
    record bytes       --key-->         the identifier asked about
Nothing in it needs a node: a CLI or a light client runs it with the genesis file alone.

Every failure is a ProofError: code INVALID_PROOF, and a `reason` (ProofFailure) that a
program can branch on and that the proof bundle's spec and test vectors name
(docs/proof-bundle.md). The checks, in order, each with the reason it fails with:
    0. the validator changes (DESIGN §12, `follow_validator_changes`), oldest first: each a
       header of the chain (MALFORMED, WRONG_CHAIN) at or after the height the set before
       it starts signing, certified by that set (as in 2), whose validators_hash is the hash
       of the new keys it names (WRONG_VALIDATORS); the new set signs from the next height;
    1. the header decodes (MALFORMED), is of the genesis chain (WRONG_CHAIN) and names the
       set that the changes say signs its next height (WRONG_VALIDATORS);
    2. the certificate commits this very header (CERTIFICATE_MISMATCH), its signers are
       genesis validators (UNKNOWN_SIGNER), each once (DUPLICATE_SIGNER), a quorum of them
       (TOO_FEW_SIGNERS), and every signature is a valid precommit (BAD_CERTIFICATE);
    3. the tree path joins the record bytes (or absence) to the header's state root
       (STATE_PROOF_MISMATCH);
    4. the record decodes (MALFORMED) and is the record of the identifier asked about
       (IDENTIFIER_MISMATCH).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from google.protobuf.message import DecodeError

from sparkchain.consensus.certificate import quorum_size
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.ledger import blocks, smt
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb


class ProofFailure(StrEnum):
    """Why a proof (or a proof bundle) is refused: stable names, part of the bundle spec."""

    MALFORMED = "MALFORMED"  # a field missing, of the wrong type or size, or not decoding
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"  # a bundle format or version not known here
    WRONG_CHAIN = "WRONG_CHAIN"  # the bundle or its header is of another chain
    GENESIS_MISMATCH = "GENESIS_MISMATCH"  # the bundle names another genesis than given
    VIEW_MISMATCH = "VIEW_MISMATCH"  # a human-readable view differs from its bytes
    WRONG_VALIDATORS = "WRONG_VALIDATORS"  # the header names another validator set
    CERTIFICATE_MISMATCH = "CERTIFICATE_MISMATCH"  # the certificate commits another block
    UNKNOWN_SIGNER = "UNKNOWN_SIGNER"  # a signer is not a genesis validator
    DUPLICATE_SIGNER = "DUPLICATE_SIGNER"  # one validator signs twice
    TOO_FEW_SIGNERS = "TOO_FEW_SIGNERS"  # fewer than a quorum of the validators
    BAD_CERTIFICATE = "BAD_CERTIFICATE"  # a signature is not a valid precommit
    STATE_PROOF_MISMATCH = "STATE_PROOF_MISMATCH"  # the tree path does not give state_root
    IDENTIFIER_MISMATCH = "IDENTIFIER_MISMATCH"  # the record proven is another identifier's


class ProofError(SparkError):
    """A refused proof: code INVALID_PROOF, with the reason a program reads."""

    def __init__(self, reason: ProofFailure, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PROOF, message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ProofError], tuple[ProofFailure, str]]:  # type: ignore[override]
        return (type(self), (self.reason, self.message))


def _invalid(message: str, reason: ProofFailure = ProofFailure.MALFORMED) -> ProofError:
    return ProofError(reason, message)


def verify_resolution(
    genesis_validators: Sequence[bytes],
    chain_id: str,
    identifier: str,
    proof: api_pb2.ResolveProof,
    hash_fn: HashFunction = sha256,
) -> tuple[pb.Record | None, int]:
    """The record proven for `identifier` (None: proven absent) and the height it holds at.

    Raises ProofError (INVALID_PROOF, with its reason) naming the first link that fails, or
    SparkError(INVALID_IDENTIFIER) for a malformed identifier.
    """
    record, header = verify_resolution_header(
        genesis_validators, chain_id, identifier, proof, hash_fn
    )
    return record, header.height


def verify_resolution_header(
    genesis_validators: Sequence[bytes],
    chain_id: str,
    identifier: str,
    proof: api_pb2.ResolveProof,
    hash_fn: HashFunction = sha256,
) -> tuple[pb.Record | None, pb.BlockHeader]:
    """As `verify_resolution`, with the whole certified header the answer holds at.

    What a client can and cannot know: the answer was the state right after that block
    (height, time_ms), as a quorum of the genesis validators committed it. It cannot know
    that no later block changed it: a node may replay an older genuine proof (before a
    revoke, a transfer, a new URL). Show the block time, and bound its age where the chain
    makes blocks at a known least rate (its empty-block interval).
    """
    key = parse_identifier(identifier).key
    header = verify_certified_header(genesis_validators, chain_id, proof, hash_fn)
    value = proof.record_bytes or None
    tree_key = smt.record_tree_key(key, hash_fn)
    if not smt.verify_proof(header.state_root, tree_key, value, proof.state_proof, hash_fn):
        shown = "absence" if value is None else "the record"
        raise _invalid(
            f"state proof does not show {shown} of {identifier} under the state root "
            f"of block {header.height}",
            ProofFailure.STATE_PROOF_MISMATCH,
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
        raise _invalid(
            f"proven record is {record.key!r}, not {key!r}", ProofFailure.IDENTIFIER_MISMATCH
        )
    return record, header


def verify_certified_header(
    genesis_validators: Sequence[bytes],
    chain_id: str,
    proof: api_pb2.ResolveProof,
    hash_fn: HashFunction = sha256,
) -> pb.BlockHeader:
    """Checks 0 to 2 on `proof.header`, `proof.commit` and `proof.validator_changes` (the
    record and the tree path are not looked at): the header, decoded, as a quorum of the
    validators walked from the genesis certified it. A state snapshot's header is checked
    this way too (node/snapshot_restore.py). Raises ProofError."""
    sets = follow_validator_changes(genesis_validators, chain_id, proof.validator_changes, hash_fn)
    header = _decoded_header(proof.header, chain_id, "proof")
    expected_validators = blocks.validators_hash(validators_at(sets, header.height + 1), hash_fn)
    if header.validators_hash != expected_validators:
        raise _invalid(
            "header names another validator set than the genesis and the validator changes "
            f"give for block {header.height + 1}",
            ProofFailure.WRONG_VALIDATORS,
        )
    _check_certificate(validators_at(sets, header.height), chain_id, header, proof, hash_fn)
    return header


ValidatorSets = list[tuple[int, tuple[bytes, ...]]]  # (signs from height, keys), in order


def follow_validator_changes(
    genesis_validators: Sequence[bytes],
    chain_id: str,
    changes: Sequence[api_pb2.ValidatorChange],
    hash_fn: HashFunction = sha256,
) -> ValidatorSets:
    """The validator sets from the genesis on, each change proved by a header certified by
    the set before it (check 0 of the module docstring); raises ProofError."""
    sets: ValidatorSets = [(1, tuple(genesis_validators))]
    for number, change in enumerate(changes):
        where = f"validator_changes[{number}]"
        header = _decoded_header(change.header, chain_id, where)
        signs_from, signers = sets[-1]
        if header.height < signs_from:
            raise _invalid(
                f"{where}: block {header.height} is before block {signs_from}, from which "
                "the set before it signs (changes must be in chain order)"
            )
        keys = tuple(change.validators)
        if not keys or any(len(k) != 32 for k in keys) or len(set(keys)) != len(keys):
            raise _invalid(f"{where}: validators must be distinct 32-byte keys, at least one")
        if header.validators_hash != blocks.validators_hash(keys, hash_fn):
            raise _invalid(
                f"{where}: block {header.height} does not commit to the validators given",
                ProofFailure.WRONG_VALIDATORS,
            )
        _check_certificate(signers, chain_id, header, change, hash_fn, where)
        sets.append((header.height + 1, keys))
    return sets


def validators_at(sets: ValidatorSets, height: int) -> tuple[bytes, ...]:
    """The keys that sign `height`, by the sets `follow_validator_changes` returned."""
    chosen = sets[0][1]
    for signs_from, keys in sets:
        if signs_from <= height:
            chosen = keys
    return chosen


def _decoded_header(header_bytes: bytes, chain_id: str, where: str) -> pb.BlockHeader:
    if not header_bytes:
        raise _invalid(f"{where} has no block header")
    header = pb.BlockHeader()
    try:
        header.ParseFromString(header_bytes)
    except DecodeError as exc:
        raise _invalid(f"{where}: header does not decode: {exc}") from None
    if header.chain_id != chain_id:
        raise _invalid(
            f"{where}: header is for chain {header.chain_id!r}, expected {chain_id!r}",
            ProofFailure.WRONG_CHAIN,
        )
    return header


def _check_certificate(
    validators: Sequence[bytes],
    chain_id: str,
    header: pb.BlockHeader,
    proof: api_pb2.ResolveProof | api_pb2.ValidatorChange,
    hash_fn: HashFunction,
    where: str = "proof",
) -> None:
    if not proof.HasField("commit"):
        raise _invalid(f"{where} has no certificate for block {header.height}")
    commit = proof.commit
    header_hash = blocks.block_hash(proof.header, hash_fn)
    if commit.height != header.height or commit.block_hash != header_hash:
        raise _invalid(
            f"certificate commits block {commit.height} ({commit.block_hash.hex()}), "
            f"not the header's block {header.height} ({header_hash.hex()})",
            ProofFailure.CERTIFICATE_MISMATCH,
        )
    _check_signers(validators, commit)
    try:
        blocks.verify_commit_certificate(chain_id, validators, commit)
    except SparkError as error:
        raise _invalid(f"certificate: {error.message}", ProofFailure.BAD_CERTIFICATE) from error


def _check_signers(validators: Sequence[bytes], commit: pb.CommitCertificate) -> None:
    """Who signed, before any signature is checked: each reason of its own (verifying the
    signatures, consensus.certificate checks these again)."""
    members = set(validators)
    seen: set[bytes] = set()
    for position, commit_sig in enumerate(commit.signatures):
        signer = commit_sig.validator.hex()
        if commit_sig.validator not in members:
            raise _invalid(
                f"certificate: signature {position} is by {signer}, not a validator of "
                f"block {commit.height}",
                ProofFailure.UNKNOWN_SIGNER,
            )
        if commit_sig.validator in seen:
            raise _invalid(
                f"certificate: validator {signer} signs twice", ProofFailure.DUPLICATE_SIGNER
            )
        seen.add(commit_sig.validator)
    needed = quorum_size(len(members))
    if len(seen) < needed:
        raise _invalid(
            f"certificate: {len(seen)} of {len(members)} validators signed block "
            f"{commit.height}, a quorum is {needed}",
            ProofFailure.TOO_FEW_SIGNERS,
        )
