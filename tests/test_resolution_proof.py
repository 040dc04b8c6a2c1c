"""Resolution proofs checked as a client does (node/proof.py): against the genesis
validators only. A genuine proof verifies, for a present and an absent identifier; every
tampered link of the chain of evidence is refused with INVALID_PROOF naming that link."""

from __future__ import annotations

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger.proof import verify_resolution
from sparkchain.ledger.records import encode_record
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import bid_of, value
from tests.helpers.ledger import LedgerChain, register_widget


def _register(chain: LedgerChain, identifier: str) -> list[pb.SignedTx]:
    acme = chain.signer("acme")
    return [acme.register(identifier, [value(1, "URL", "https://x")], now_ms=chain.next_time_ms)]


def _code(error: pytest.ExceptionInfo[SparkError]) -> ErrorCode:
    return error.value.code


def test_resolution_proofs_verify_against_the_genesis_validators(ledger_chain: LedgerChain) -> None:
    register_widget(ledger_chain)
    ledger = ledger_chain.ledger
    validators = ledger.validators
    record, proof = ledger.resolve_with_proof("88/widget-1")
    assert record is not None
    proven, height = verify_resolution(
        validators, ledger_chain.genesis.chain_id, "88/widget-1", proof
    )
    assert proven == record and height == 1
    absent, proof = ledger.resolve_with_proof("88/nothing-here")
    assert absent is None and proof.record_bytes == b""
    assert verify_resolution(
        validators, ledger_chain.genesis.chain_id, "88/nothing-here", proof
    ) == (
        None,
        1,
    )


def _proof_failure(
    chain: LedgerChain, proof: api_pb2.ResolveProof, identifier: str = "88/widget-1"
) -> str:
    with pytest.raises(SparkError) as caught:
        verify_resolution(chain.ledger.validators, chain.genesis.chain_id, identifier, proof)
    assert _code(caught) == ErrorCode.INVALID_PROOF
    return caught.value.message


def test_tampered_resolution_proofs_fail(ledger_chain: LedgerChain) -> None:
    register_widget(ledger_chain)
    ledger_chain.commit(_register(ledger_chain, "88/other"))
    _, good = ledger_chain.ledger.resolve_with_proof("88/widget-1")

    def copy() -> api_pb2.ResolveProof:
        return api_pb2.ResolveProof.FromString(good.SerializeToString())

    record = pb.Record.FromString(good.record_bytes)
    record.owner = bid_of("mallory")
    proof = copy()
    proof.record_bytes = encode_record(record)
    assert "state proof does not show the record" in _proof_failure(ledger_chain, proof)

    proof = copy()
    proof.record_bytes = b""
    assert "does not show absence" in _proof_failure(ledger_chain, proof)

    assert "does not show" in _proof_failure(ledger_chain, good, "88/other")

    proof = copy()
    header = pb.BlockHeader.FromString(proof.header)
    header.state_root = b"\x01" * 32
    proof.header = header.SerializeToString()
    assert "certificate commits block" in _proof_failure(ledger_chain, proof)

    proof = copy()
    del proof.commit.signatures[1:]
    assert "certificate: 1 of 4 validators signed block" in _proof_failure(ledger_chain, proof)

    proof = copy()
    proof.ClearField("commit")
    assert "no certificate" in _proof_failure(ledger_chain, proof)

    proof = copy()
    proof.header = b""
    assert "no block header" in _proof_failure(ledger_chain, proof)

    proof = copy()
    proof.state_proof = proof.state_proof[:-1]
    assert "state proof" in _proof_failure(ledger_chain, proof)

    with pytest.raises(SparkError) as caught:
        verify_resolution(ledger_chain.ledger.validators, "another-chain", "88/widget-1", good)
    assert "header is for chain" in caught.value.message
    with pytest.raises(SparkError) as caught:
        verify_resolution(
            ledger_chain.ledger.validators[:3], ledger_chain.genesis.chain_id, "88/widget-1", good
        )
    assert "another validator set" in caught.value.message


def test_resolve_with_proof_needs_a_committed_block(ledger_chain: LedgerChain) -> None:
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.resolve_with_proof("88/a")
    assert _code(caught) == ErrorCode.UNAVAILABLE
