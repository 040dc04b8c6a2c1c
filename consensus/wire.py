"""Conversions between the core's dataclasses and the protobuf messages (proto/types.proto)
that carry them between nodes and store certificates with blocks.

Decoding checks only what the dataclasses cannot represent (an unknown vote type); the
core verifies signatures and everything else when it receives the message.
"""

from __future__ import annotations

from sparkchain.consensus.messages import (
    CommitCertificate,
    CommitSig,
    Evidence,
    Proposal,
    Vote,
    VoteType,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.proto import types_pb2 as pb


def vote_to_proto(vote: Vote) -> pb.Vote:
    return pb.Vote(
        type=pb.PREVOTE if vote.type is VoteType.PREVOTE else pb.PRECOMMIT,
        height=vote.height,
        round=vote.round,
        block_hash=vote.block_hash,
        validator=vote.validator,
        signature=vote.signature,
    )


def vote_from_proto(message: pb.Vote) -> Vote:
    if message.type not in (pb.PREVOTE, pb.PRECOMMIT):
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"vote: unknown type {message.type}")
    return Vote(
        VoteType(message.type),
        message.height,
        message.round,
        message.block_hash,
        message.validator,
        message.signature,
    )


def proposal_to_proto(proposal: Proposal) -> pb.Proposal:
    return pb.Proposal(
        height=proposal.height,
        round=proposal.round,
        valid_round=proposal.valid_round,
        block_hash=proposal.block_hash,
        block=proposal.value,
        proposer=proposal.proposer,
        signature=proposal.signature,
    )


def proposal_from_proto(message: pb.Proposal) -> Proposal:
    return Proposal(
        message.height,
        message.round,
        message.valid_round,
        message.block_hash,
        message.block,
        message.proposer,
        message.signature,
    )


def certificate_to_proto(certificate: CommitCertificate) -> pb.CommitCertificate:
    return pb.CommitCertificate(
        height=certificate.height,
        round=certificate.round,
        block_hash=certificate.block_hash,
        signatures=[
            pb.CommitSig(validator=s.validator, signature=s.signature)
            for s in certificate.signatures
        ],
    )


def certificate_from_proto(message: pb.CommitCertificate) -> CommitCertificate:
    return CommitCertificate(
        message.height,
        message.round,
        message.block_hash,
        tuple(CommitSig(s.validator, s.signature) for s in message.signatures),
    )


def evidence_to_proto(evidence: Evidence) -> pb.Evidence:
    return pb.Evidence(first=vote_to_proto(evidence.first), second=vote_to_proto(evidence.second))


def evidence_from_proto(message: pb.Evidence) -> Evidence:
    return Evidence(vote_from_proto(message.first), vote_from_proto(message.second))
