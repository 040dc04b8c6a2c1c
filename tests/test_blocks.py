"""Block headers and block validation: tx root, linkage, certificates, re-execution.

A valid block is built with a ledger, then one field is changed and the block re-encoded;
`validate_block` must name that field ("<field>: expected X got Y").
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import MERKLE_LEAF, MERKLE_NODE
from sparkchain.ledger import blocks
from sparkchain.ledger.proof import verify_resolution
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import key, value
from tests.helpers.ledger import LedgerChain, certificate, proposer


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 as written: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(MERKLE_LEAF + leaves[0]).digest()
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    left, right = _rfc6962_root(leaves[:split]), _rfc6962_root(leaves[split:])
    return hashlib.sha256(MERKLE_NODE + left + right).digest()


@pytest.mark.parametrize("count", [*range(0, 18), 31, 32, 33, 100, 1000])
def test_tx_root_is_rfc6962_merkle_tree_hash(count: int) -> None:
    rng = random.Random(count)
    ids = [rng.randbytes(32) for _ in range(count)]
    assert blocks.tx_root(ids) == _rfc6962_root(ids)


def test_tx_root_depends_on_order_and_every_id() -> None:
    ids = [bytes([i]) * 32 for i in range(5)]
    root = blocks.tx_root(ids)
    assert blocks.tx_root(ids[::-1]) != root
    assert blocks.tx_root(ids[:4]) != root
    assert blocks.tx_root([*ids[:4], b"\x09" * 32]) != root


def test_certificate_hash_is_empty_only_without_certificate() -> None:
    assert blocks.certificate_hash(None) == b""
    cert = pb.CommitCertificate(height=1, block_hash=b"\x01" * 32)
    assert len(blocks.certificate_hash(cert)) == 32


# ---- validation of received blocks ----


def _registrations(chain: LedgerChain, count: int, start: int = 0) -> list[pb.SignedTx]:
    acme = chain.signer("acme")
    return [acme.register(f"88/item-{start + i}", now_ms=chain.next_time_ms) for i in range(count)]


def _tampered(block_bytes: bytes, change: Callable[[pb.BlockHeader, pb.Block], None]) -> bytes:
    block = pb.Block.FromString(block_bytes)
    header = pb.BlockHeader.FromString(block.header)
    change(header, block)
    block.header = header.SerializeToString()
    return block.SerializeToString()


def _set(field: str, value: object) -> Callable[[pb.BlockHeader, pb.Block], None]:
    def change(header: pb.BlockHeader, block: pb.Block) -> None:
        setattr(header, field, value)

    return change


HEADER_CASES = {
    "chain_id": _set("chain_id", "another-chain"),
    "height": _set("height", 3),
    "prev_hash": _set("prev_hash", b"\x07" * 32),
    "validators_hash": _set("validators_hash", b"\x07" * 32),
    "last_commit_hash": _set("last_commit_hash", b"\x07" * 32),
    "tx_root": _set("tx_root", b"\x07" * 32),
    "state_root": _set("state_root", b"\x07" * 32),
}


@pytest.mark.parametrize("field", sorted(HEADER_CASES))
def test_block_with_a_wrong_header_field_is_invalid(ledger_chain: LedgerChain, field: str) -> None:
    ledger_chain.commit(_registrations(ledger_chain, 2))
    built = ledger_chain.build(_registrations(ledger_chain, 3, start=10))
    bad = _tampered(built.block_bytes, HEADER_CASES[field])
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.validate_block(bad)
    assert caught.value.code == ErrorCode.INVALID_BLOCK
    assert caught.value.message.startswith(f"{field}: expected")


def test_block_time_must_be_after_the_previous_block(ledger_chain: LedgerChain) -> None:
    first = ledger_chain.commit()
    previous_time = pb.BlockHeader.FromString(first.block.header).time_ms
    built = ledger_chain.build()
    bad = _tampered(built.block_bytes, _set("time_ms", previous_time))
    with pytest.raises(SparkError, match=f"time_ms: expected more than {previous_time}"):
        ledger_chain.ledger.validate_block(bad)


def test_block_1_must_be_after_genesis_time_and_link_to_genesis(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build()
    header = pb.BlockHeader.FromString(built.block.header)
    assert header.prev_hash == ledger_chain.genesis.genesis_hash
    assert header.last_commit_hash == b""
    assert not built.block.HasField("last_commit")
    bad = _tampered(built.block_bytes, _set("time_ms", ledger_chain.genesis.genesis_time_ms))
    with pytest.raises(SparkError, match="time_ms: expected more than"):
        ledger_chain.ledger.validate_block(bad)


def test_proposer_must_be_a_validator(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build()
    bad = _tampered(built.block_bytes, _set("proposer", key("mallory").public_key))
    with pytest.raises(SparkError, match=r"proposer: .* is not a validator"):
        ledger_chain.ledger.validate_block(bad)


def test_block_1_must_not_carry_a_certificate(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build()

    def add_certificate(header: pb.BlockHeader, block: pb.Block) -> None:
        block.last_commit.CopyFrom(certificate(ledger_chain.genesis, 1, b"\x01" * 32))

    with pytest.raises(SparkError, match="last_commit: expected none for block 1"):
        ledger_chain.ledger.validate_block(_tampered(built.block_bytes, add_certificate))


def test_later_block_must_carry_the_previous_certificate(ledger_chain: LedgerChain) -> None:
    ledger_chain.commit()
    built = ledger_chain.build()

    def drop_certificate(header: pb.BlockHeader, block: pb.Block) -> None:
        block.ClearField("last_commit")

    with pytest.raises(SparkError, match="last_commit: expected the certificate of block 1"):
        ledger_chain.ledger.validate_block(_tampered(built.block_bytes, drop_certificate))


def test_certificate_of_another_block_is_refused(ledger_chain: LedgerChain) -> None:
    ledger_chain.commit()
    other = certificate(ledger_chain.genesis, 1, b"\x05" * 32)
    with pytest.raises(SparkError, match=r"last_commit\.block_hash: expected"):
        ledger_chain.ledger.build_block(
            [], ledger_chain.next_time_ms, proposer(ledger_chain.genesis), other
        )
    with pytest.raises(SparkError, match=r"last_commit\.block_hash: expected"):
        ledger_chain.ledger.validate_block(
            _with_last_commit(ledger_chain.build().block_bytes, other)
        )


def test_a_different_valid_quorum_for_the_previous_block_is_accepted(
    ledger_chain: LedgerChain,
) -> None:
    first = ledger_chain.commit()  # stored with validators 1..3
    four = certificate(ledger_chain.genesis, 1, first.block_hash, signers=4)
    built = ledger_chain.ledger.build_block(
        [], ledger_chain.next_time_ms, proposer(ledger_chain.genesis), four
    )
    ledger_chain.reopen()  # forget the proposal, so the block is really re-validated
    pending = ledger_chain.ledger.validate_block(built.block_bytes)
    assert pending.block.last_commit == four


def _with_last_commit(block_bytes: bytes, cert: pb.CommitCertificate) -> bytes:
    def swap(header: pb.BlockHeader, block: pb.Block) -> None:
        block.last_commit.CopyFrom(cert)
        header.last_commit_hash = blocks.certificate_hash(cert)

    return _tampered(block_bytes, swap)


def test_a_certificate_without_quorum_is_refused(ledger_chain: LedgerChain) -> None:
    first = ledger_chain.commit()
    weak = certificate(ledger_chain.genesis, 1, first.block_hash, signers=2)
    message = "last_commit: 2 precommits for height 1, need 3"
    with pytest.raises(SparkError, match=message):
        ledger_chain.ledger.build_block(
            [], ledger_chain.next_time_ms, proposer(ledger_chain.genesis), weak
        )
    with pytest.raises(SparkError, match=message):
        ledger_chain.ledger.validate_block(
            _with_last_commit(ledger_chain.build().block_bytes, weak)
        )


def test_a_forged_certificate_signature_is_refused(ledger_chain: LedgerChain) -> None:
    first = ledger_chain.commit()
    forged = certificate(ledger_chain.genesis, 1, first.block_hash, signers=4)
    forged.signatures[3].signature = bytes(64)
    message = "last_commit: signature 3: bad precommit signature"
    with pytest.raises(SparkError, match=message):
        ledger_chain.ledger.build_block(
            [], ledger_chain.next_time_ms, proposer(ledger_chain.genesis), forged
        )
    with pytest.raises(SparkError, match=message):
        ledger_chain.ledger.validate_block(
            _with_last_commit(ledger_chain.build().block_bytes, forged)
        )


def test_a_tx_with_a_bad_signature_makes_the_block_invalid(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build(_registrations(ledger_chain, 3))

    def forge(header: pb.BlockHeader, block: pb.Block) -> None:
        block.txs[1].signature = bytes(64)

    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.validate_block(_tampered(built.block_bytes, forge))
    assert caught.value.code == ErrorCode.INVALID_BLOCK
    assert caught.value.message.startswith("tx 1 (")
    assert "BAD_SIGNATURE" in caught.value.message


def test_a_tx_breaking_a_rule_makes_the_block_invalid(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build(_registrations(ledger_chain, 2))
    stranger = ledger_chain.signer("mallory").register(
        "88/not-mine", now_ms=ledger_chain.next_time_ms
    )

    def add_unauthorized(header: pb.BlockHeader, block: pb.Block) -> None:
        block.txs.append(stranger)

    with pytest.raises(SparkError, match=r"tx 2 \(.*UNAUTHORIZED"):
        ledger_chain.ledger.validate_block(_tampered(built.block_bytes, add_unauthorized))


def test_the_same_tx_twice_in_a_block_is_invalid(ledger_chain: LedgerChain) -> None:
    tx = _registrations(ledger_chain, 1)[0]
    built = ledger_chain.build([tx])

    def duplicate(header: pb.BlockHeader, block: pb.Block) -> None:
        block.txs.append(tx)

    with pytest.raises(SparkError, match=r"tx 1 \(.*DUPLICATE_TX"):
        ledger_chain.ledger.validate_block(_tampered(built.block_bytes, duplicate))


def test_bytes_that_are_not_a_block_are_invalid(ledger_chain: LedgerChain) -> None:
    with pytest.raises(SparkError, match="block does not decode") as caught:
        ledger_chain.ledger.validate_block(b"\xff\xff\xff")
    assert caught.value.code == ErrorCode.INVALID_BLOCK


def test_a_block_with_a_non_canonical_header_encoding_is_refused(
    ledger_chain: LedgerChain,
) -> None:
    # nodes serve headers re-encoded; a header whose certified bytes differ from that
    # encoding would make every proof of its block unverifiable, so validators refuse it
    acme = ledger_chain.signer("acme")
    built = ledger_chain.build(
        [acme.register("88/a", [value(1, "URL", "https://e")], now_ms=ledger_chain.next_time_ms)]
    )
    header = pb.BlockHeader.FromString(built.block.header)
    parts = []
    for field, field_value in header.ListFields():
        one = pb.BlockHeader()
        setattr(one, field.name, field_value)
        parts.append(one.SerializeToString())
    raw = b"".join(reversed(parts))  # the same header, fields in reverse order
    assert pb.BlockHeader.FromString(raw) == header and raw != built.block.header
    block = pb.Block()
    block.CopyFrom(built.block)
    block.header = raw
    with pytest.raises(SparkError) as refused:
        ledger_chain.ledger.validate_block(block.SerializeToString(deterministic=True))
    assert refused.value.code is ErrorCode.INVALID_BLOCK
    assert "canonical" in refused.value.message
    # the canonical block itself is accepted, and its proofs verify
    pending = ledger_chain.ledger.validate_block(built.block_bytes)
    ledger_chain.ledger.commit_block(
        pending, certificate(ledger_chain.genesis, 1, pending.block_hash)
    )
    _, proof = ledger_chain.ledger.resolve_with_proof("88/a")
    record, height = verify_resolution(
        ledger_chain.ledger.validators, ledger_chain.genesis.chain_id, "88/a", proof
    )
    assert record is not None
    assert record.key == "88/A" and height == 1


def test_a_valid_block_from_another_node_is_accepted(tmp_path: Path) -> None:
    proposer_chain = LedgerChain(tmp_path / "a")
    validator_chain = LedgerChain(tmp_path / "b")
    try:
        for round_ in range(3):
            built = proposer_chain.build(_registrations(proposer_chain, 5, start=round_ * 5))
            pending = validator_chain.ledger.validate_block(built.block_bytes)
            assert pending.header.state_root == built.pending.header.state_root
            cert = certificate(proposer_chain.genesis, pending.height, pending.block_hash)
            proposer_chain.ledger.commit_block(built.pending, cert)
            validator_chain.ledger.commit_block(pending, cert)
        assert validator_chain.ledger.state_root == proposer_chain.ledger.state_root
        assert validator_chain.ledger.last_block_hash == proposer_chain.ledger.last_block_hash
    finally:
        proposer_chain.close()
        validator_chain.close()


def _parent_of_block_1(chain: LedgerChain) -> blocks.Parent:
    validators = tuple(chain.ledger.validators)
    return blocks.Parent(
        chain_id=chain.ledger.chain_id,
        height=0,
        block_hash=chain.ledger.last_block_hash,
        time_ms=chain.ledger.last_block_time_ms,
        validators=validators,
        validators_hash=blocks.validators_hash(validators),
    )


def test_validate_header_checks_linkage_before_it_pays_for_execution(
    ledger_chain: LedgerChain,
) -> None:
    built = ledger_chain.build(_registrations(ledger_chain, 2))
    decoded = blocks.decode_block(_tampered(built.block_bytes, _set("prev_hash", bytes(32))))
    executed: list[bool] = []

    def execute() -> tuple[list[bytes], bytes]:
        executed.append(True)
        return list(built.pending.tx_ids), built.pending.header.state_root

    with pytest.raises(SparkError) as refused:
        blocks.validate_header(
            decoded,
            _parent_of_block_1(ledger_chain),
            check_certificate=lambda _: None,
            execute=execute,
        )
    assert refused.value.code is ErrorCode.INVALID_BLOCK
    assert refused.value.message.startswith("prev_hash: expected")
    assert executed == []


def test_validate_header_compares_the_execution_results_last(ledger_chain: LedgerChain) -> None:
    built = ledger_chain.build(_registrations(ledger_chain, 2))
    decoded = blocks.decode_block(built.block_bytes)
    parent = _parent_of_block_1(ledger_chain)
    tx_ids = list(built.pending.tx_ids)
    root = built.pending.header.state_root
    blocks.validate_header(
        decoded, parent, check_certificate=lambda _: None, execute=lambda: (tx_ids, root)
    )
    with pytest.raises(SparkError, match=r"^INVALID_BLOCK: tx_root: expected"):
        blocks.validate_header(
            decoded, parent, check_certificate=lambda _: None, execute=lambda: (tx_ids[:1], root)
        )
    with pytest.raises(SparkError, match=r"^INVALID_BLOCK: state_root: expected"):
        blocks.validate_header(
            decoded, parent, check_certificate=lambda _: None, execute=lambda: (tx_ids, bytes(32))
        )
