"""Quorum sizes and commit certificates (pure; used by the core, block sync and light clients)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sparkchain.consensus.crypto import Ed25519Verifier, Verifier
from sparkchain.consensus.messages import CommitCertificate, CommitSig, Evidence, Vote, VoteType
from sparkchain.consensus.signbytes import (
    MAX_BLOCK_HASH_BYTES,
    chain_prefix,
    encodable,
    vote_sign_bytes,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import VOTE_TAG


def quorum_size(n: int) -> int:
    """More than two thirds of n: floor(2n/3) + 1 (2f+1 when n = 3f+1; 2 of 2; 3 of 3)."""
    return 2 * n // 3 + 1


def skip_threshold(n: int) -> int:
    """f + 1 with f = floor((n-1)/3): enough senders that one of them is correct."""
    return (n - 1) // 3 + 1


def build_certificate(
    height: int, round: int, block_hash: bytes, precommits: Iterable[Vote]
) -> CommitCertificate:
    """The certificate made of `precommits` (already verified, one per validator)."""
    signatures = tuple(
        CommitSig(vote.validator, vote.signature)
        for vote in precommits
        if vote.block_hash == block_hash and vote.round == round and vote.height == height
    )
    return CommitCertificate(height, round, block_hash, signatures)


def verify_certificate(
    chain_id: str,
    validators: Sequence[bytes],
    certificate: CommitCertificate,
    verifier: Verifier | None = None,
) -> None:
    """Raise SparkError(INVALID_CERTIFICATE) unless a quorum of distinct `validators` signed
    a precommit for (height, round, block_hash). Every signature present must be valid."""
    check = verifier if verifier is not None else Ed25519Verifier()
    cert = certificate
    if not cert.block_hash:
        raise SparkError(ErrorCode.INVALID_CERTIFICATE, "certificate for a nil block hash")
    if len(cert.block_hash) > MAX_BLOCK_HASH_BYTES:
        raise SparkError(ErrorCode.INVALID_CERTIFICATE, "block hash longer than 255 bytes")
    if not encodable(cert.height, cert.round, cert.block_hash):
        raise SparkError(ErrorCode.INVALID_CERTIFICATE, "height or round out of range")
    members = set(validators)
    sign_bytes = vote_sign_bytes(
        chain_prefix(chain_id), VoteType.PRECOMMIT, cert.height, cert.round, cert.block_hash
    )
    seen: set[bytes] = set()
    for position, commit_sig in enumerate(cert.signatures):
        validator = commit_sig.validator
        if validator not in members:
            problem = "{}… is not a validator"
        elif validator in seen:
            problem = "validator {}… signed twice"
        elif not check.verify(validator, VOTE_TAG, sign_bytes, commit_sig.signature):
            problem = "bad precommit signature of {}…"
        else:
            seen.add(validator)
            continue
        raise SparkError(
            ErrorCode.INVALID_CERTIFICATE,
            f"signature {position}: " + problem.format(validator.hex()[:16]),
        )
    needed = quorum_size(len(members))
    if len(seen) < needed:
        raise SparkError(
            ErrorCode.INVALID_CERTIFICATE,
            f"{len(seen)} precommits for height {cert.height}, need {needed} of {len(members)}",
        )


def verify_evidence(
    chain_id: str,
    validators: Sequence[bytes],
    evidence: Evidence,
    verifier: Verifier | None = None,
) -> None:
    """Raise SparkError(INVALID_ARGUMENT) unless `evidence` is two different votes that one
    validator really signed for the same (height, round, type)."""
    check = verifier if verifier is not None else Ed25519Verifier()
    first, second = evidence.first, evidence.second
    if first.validator != second.validator or first.validator not in set(validators):
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "evidence: not one validator's votes")
    if (first.type, first.height, first.round) != (second.type, second.height, second.round):
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "evidence: votes of different steps")
    if first.block_hash == second.block_hash:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "evidence: the votes do not conflict")
    prefix = chain_prefix(chain_id)
    for vote in (first, second):
        if not encodable(vote.height, vote.round, vote.block_hash):
            raise SparkError(ErrorCode.INVALID_ARGUMENT, "evidence: vote out of range")
        message = vote_sign_bytes(prefix, vote.type, vote.height, vote.round, vote.block_hash)
        if not check.verify(vote.validator, VOTE_TAG, message, vote.signature):
            raise SparkError(ErrorCode.INVALID_ARGUMENT, "evidence: a vote is not signed")
