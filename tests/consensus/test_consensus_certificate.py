"""Commit certificates, the canonical sign bytes and the protobuf conversions."""

from __future__ import annotations

import struct

import pytest
from consensus_builders import CHAIN, Cluster, value_hash

from sparkchain.consensus import (
    NIL,
    CommitCertificate,
    CommitSig,
    Evidence,
    VoteType,
    build_certificate,
    verify_certificate,
)
from sparkchain.consensus.signbytes import chain_prefix, proposal_sign_bytes, vote_sign_bytes
from sparkchain.consensus.wire import (
    certificate_from_proto,
    certificate_to_proto,
    evidence_from_proto,
    evidence_to_proto,
    proposal_from_proto,
    proposal_to_proto,
    vote_from_proto,
    vote_to_proto,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.proto import types_pb2 as pb

PRECOMMIT = VoteType.PRECOMMIT
BLOCK = value_hash(b"block")


def _certificate(cluster: Cluster, signers: list[int], height: int = 5) -> CommitCertificate:
    votes = cluster.votes(signers, PRECOMMIT, height, 2, BLOCK)
    return build_certificate(height, 2, BLOCK, votes)


def _invalid(cluster: Cluster, certificate: CommitCertificate) -> str:
    with pytest.raises(SparkError) as caught:
        verify_certificate(CHAIN, cluster.keys, certificate)
    assert caught.value.code is ErrorCode.INVALID_CERTIFICATE
    return caught.value.message


def test_sign_bytes_layout_is_fixed():
    prefix = chain_prefix("c")
    assert prefix == b"\x01c"
    vote = vote_sign_bytes(prefix, 2, 7, 3, b"\xaa\xbb")
    assert vote == b"\x01c" + b"\x02" + struct.pack(">QI", 7, 3) + b"\x02\xaa\xbb"
    nil_vote = vote_sign_bytes(prefix, 1, 7, 3, NIL)
    assert nil_vote == b"\x01c\x01" + struct.pack(">QI", 7, 3) + b"\x00"
    proposal = proposal_sign_bytes(prefix, 7, 3, -1, b"\xaa")
    assert proposal == b"\x01c\x03" + struct.pack(">QIi", 7, 3, -1) + b"\x01\xaa"
    with pytest.raises(SparkError):
        chain_prefix("x" * 65)


def test_quorum_of_real_precommits_verifies():
    cluster = Cluster(4, real=True)
    verify_certificate(CHAIN, cluster.keys, _certificate(cluster, [0, 2, 3]))


def test_certificate_short_of_a_quorum_is_invalid():
    cluster = Cluster(4, real=True)
    assert "2 precommits" in _invalid(cluster, _certificate(cluster, [0, 2]))


def test_certificate_counting_one_validator_twice_is_invalid():
    cluster = Cluster(4, real=True)
    good = _certificate(cluster, [0, 1, 2])
    doubled = CommitCertificate(5, 2, BLOCK, (*good.signatures[:2], good.signatures[1]))
    assert "signed twice" in _invalid(cluster, doubled)


def test_certificate_with_a_stranger_or_a_bad_signature_is_invalid():
    cluster = Cluster(4, real=True)
    stranger = Cluster(5, real=True)
    foreign = _certificate(stranger, [0, 1, 4])
    assert "not a validator" in _invalid(cluster, foreign)
    good = _certificate(cluster, [0, 1, 2])
    forged = (*good.signatures[:2], CommitSig(cluster.keys[3], bytes(64)))
    assert "bad precommit signature" in _invalid(cluster, CommitCertificate(5, 2, BLOCK, forged))
    # the same signatures do not certify another height, round or block
    moved = CommitCertificate(6, 2, BLOCK, good.signatures)
    assert "bad precommit signature" in _invalid(cluster, moved)
    assert "nil" in _invalid(cluster, CommitCertificate(5, 2, NIL, good.signatures))


def test_certificate_of_another_chain_is_invalid():
    cluster = Cluster(4, real=True)
    certificate = _certificate(cluster, [0, 1, 2])
    with pytest.raises(SparkError):
        verify_certificate("other-chain", cluster.keys, certificate)


def test_messages_round_trip_through_protobuf_bytes():
    cluster = Cluster(4, real=True)
    vote = cluster.vote(1, PRECOMMIT, 9, 4, BLOCK)
    nil_vote = cluster.vote(1, PRECOMMIT, 9, 4)
    proposal = cluster.proposal(9, 4, b"block", valid_round=2)
    certificate = _certificate(cluster, [0, 1, 3])
    evidence = Evidence(vote, nil_vote)

    def again(message, cls):  # type: ignore[no-untyped-def]
        return cls.FromString(message.SerializeToString())

    assert vote_from_proto(again(vote_to_proto(vote), pb.Vote)) == vote
    assert vote_from_proto(again(vote_to_proto(nil_vote), pb.Vote)) == nil_vote
    assert proposal_from_proto(again(proposal_to_proto(proposal), pb.Proposal)) == proposal
    wire = again(certificate_to_proto(certificate), pb.CommitCertificate)
    assert certificate_from_proto(wire) == certificate
    assert evidence_from_proto(again(evidence_to_proto(evidence), pb.Evidence)) == evidence
    with pytest.raises(SparkError):
        vote_from_proto(pb.Vote(height=1))  # VOTE_TYPE_UNSPECIFIED
