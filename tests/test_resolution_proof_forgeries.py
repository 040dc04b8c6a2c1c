"""Resolution proofs forged by a malicious node (DESIGN §7) are refused.

The client trusts the genesis validators only. Every answer below is built by a node that
wants the client to believe something false; each must end in INVALID_PROOF (never another
exception), or, where the answer is genuine but old, say which block it is from.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger import smt
from sparkchain.ledger.proof import verify_resolution, verify_resolution_header
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import make_test_genesis, value
from tests.helpers.ledger import LedgerChain, certificate, register_widget

NAMES = [f"88/item-{i}" for i in range(40)]


@pytest.fixture
def chain_with_items(ledger_chain: LedgerChain) -> LedgerChain:
    """Block 1 registers 88/Widget-1 (register_widget), block 2 the 40 NAMES: a tree with
    enough leaves that forged paths have neighbours to borrow from."""
    register_widget(ledger_chain)
    acme = ledger_chain.signer("acme")
    ledger_chain.commit(
        [
            acme.register(n, [value(1, "URL", "https://x")], now_ms=ledger_chain.next_time_ms)
            for n in NAMES
        ]
    )
    return ledger_chain


def _verify(chain: LedgerChain, identifier: str, proof: api_pb2.ResolveProof) -> object:
    return verify_resolution(chain.ledger.validators, chain.genesis.chain_id, identifier, proof)


def _refused(chain: LedgerChain, identifier: str, proof: api_pb2.ResolveProof) -> str:
    with pytest.raises(SparkError) as caught:
        _verify(chain, identifier, proof)
    assert caught.value.code == ErrorCode.INVALID_PROOF, caught.value
    return caught.value.message


def _copy(proof: api_pb2.ResolveProof) -> api_pb2.ResolveProof:
    return api_pb2.ResolveProof.FromString(proof.SerializeToString())


def test_case_variants_name_one_record_and_a_proof_proves_only_its_own_key(
    chain_with_items: LedgerChain,
) -> None:
    _, proof = chain_with_items.ledger.resolve_with_proof("88/widget-1")
    for spelling in ("88/Widget-1", "88/WIDGET-1", "88/widget-1"):
        record, height = _verify(chain_with_items, spelling, proof)  # type: ignore[misc]
        assert record.identifier == "88/Widget-1" and record.key == "88/WIDGET-1"
        assert height == 2
    for other in ("88/widget-2", "88/widget-1 ", "88.1/widget-1", "88/item-1"):
        with pytest.raises(SparkError) as caught:
            _verify(chain_with_items, other, proof)
        assert caught.value.code in (ErrorCode.INVALID_PROOF, ErrorCode.INVALID_IDENTIFIER)


def test_absence_cannot_be_shown_for_a_present_key_with_a_neighbours_leaf(
    chain_with_items: LedgerChain,
) -> None:
    """For a present key, forge "absent: the slot holds another key's leaf" proofs from every
    other leaf of the tree, at every depth, plus the node's genuine absence proofs."""
    _, present = chain_with_items.ledger.resolve_with_proof("88/item-7")
    target = smt.record_tree_key("88/ITEM-7")
    leaves = []
    for name in [*NAMES, "88/Widget-1"]:
        if name == "88/item-7":
            continue
        record, proof = chain_with_items.ledger.resolve_with_proof(name)
        assert record is not None
        leaves.append(smt.record_tree_key(record.key) + smt.value_hash(proof.record_bytes))
    path = present.state_proof[2:]  # the genuine path nodes of the present key
    forged = 0
    for leaf in leaves:
        for depth in range(present.state_proof[1] + 1):
            attempt = _copy(present)
            attempt.record_bytes = b""
            attempt.state_proof = bytes((2, depth)) + path + leaf
            _refused(chain_with_items, "88/item-7", attempt)
            forged += 1
    for absent in ("88/nothing", "88/item-70", "88/item-7x"):
        _, proof = chain_with_items.ledger.resolve_with_proof(absent)
        attempt = _copy(present)
        attempt.record_bytes = b""
        attempt.state_proof = proof.state_proof
        _refused(chain_with_items, "88/item-7", attempt)
    assert forged > 40 and target not in {leaf[:32] for leaf in leaves}


def test_header_of_another_chain_or_validator_set_is_refused(
    chain_with_items: LedgerChain, tmp_path: Path
) -> None:
    for genesis in (
        make_test_genesis(chain_id="sparkchain-other"),
        make_test_genesis(validators=1),
        make_test_genesis(validators=7),
    ):
        other = LedgerChain(tmp_path / genesis.genesis_hash.hex()[:8], genesis)
        try:
            register_widget(other)
            _, proof = other.ledger.resolve_with_proof("88/Widget-1")
            message = _refused(chain_with_items, "88/Widget-1", proof)
            assert "chain" in message or "validator set" in message
        finally:
            other.close()


def test_certificate_must_commit_exactly_this_header(chain_with_items: LedgerChain) -> None:
    _, proof = chain_with_items.ledger.resolve_with_proof("88/Widget-1")
    header = pb.BlockHeader.FromString(proof.header)
    genesis = chain_with_items.genesis
    _, _, first_certificate = chain_with_items.ledger.get_block(1)
    assert first_certificate is not None
    cases: list[tuple[str, pb.CommitCertificate]] = [
        ("an earlier block's certificate", first_certificate),
        ("height off by one", certificate(genesis, header.height + 1, proof.commit.block_hash)),
        ("another hash", certificate(genesis, header.height, hashlib.sha256(b"x").digest())),
        ("too few signers", certificate(genesis, header.height, proof.commit.block_hash, 0, 2)),
    ]
    renamed = pb.CommitCertificate()
    renamed.CopyFrom(proof.commit)
    renamed.round += 1  # the signatures were made for the round they name
    cases.append(("round changed", renamed))
    doubled = certificate(genesis, header.height, proof.commit.block_hash, 0, 2)
    doubled.signatures.append(doubled.signatures[0])
    cases.append(("one validator counted twice", doubled))
    stranger = certificate(genesis, header.height, proof.commit.block_hash, 0, 2)
    stranger.signatures.add(validator=b"\x01" * 32, signature=b"\x02" * 64)
    cases.append(("a non-validator signer", stranger))
    missing = _copy(proof)
    missing.ClearField("commit")
    _refused(chain_with_items, "88/Widget-1", missing)
    for what, cert in cases:
        attempt = _copy(proof)
        attempt.commit.CopyFrom(cert)
        with pytest.raises(SparkError) as caught:
            _verify(chain_with_items, "88/Widget-1", attempt)
        assert caught.value.code == ErrorCode.INVALID_PROOF, what


def test_an_old_proof_still_verifies_and_says_which_block_it_is_from(
    chain_with_items: LedgerChain,
) -> None:
    """Staleness: a node may answer with a genuine proof of an older block (before a revoke,
    a transfer, a new URL). The client cannot tell it is not the newest block; it can only
    report the height and the block time it verified, and refuse proofs older than it
    accepts (`spark resolve --verify --max-age`)."""
    _, old = chain_with_items.ledger.resolve_with_proof("88/Widget-1")
    acme = chain_with_items.signer("acme")
    chain_with_items.commit(
        [acme.revoke("88/Widget-1", "recalled", now_ms=chain_with_items.next_time_ms)]
    )
    record, header = verify_resolution_header(
        chain_with_items.ledger.validators, chain_with_items.genesis.chain_id, "88/Widget-1", old
    )
    assert record is not None and record.status == pb.ACTIVE
    assert (
        header.height == 2
        and header.time_ms == chain_with_items.ledger.last_header().time_ms - 1000
    )
    current, header = verify_resolution_header(
        chain_with_items.ledger.validators,
        chain_with_items.genesis.chain_id,
        "88/Widget-1",
        chain_with_items.ledger.resolve_with_proof("88/Widget-1")[1],
    )
    assert current is not None and current.status == pb.REVOKED and header.height == 3


def _mutations(rng: random.Random) -> Iterator[Callable[[api_pb2.ResolveProof], None]]:
    def flip(field: str) -> Callable[[api_pb2.ResolveProof], None]:
        def mutate(proof: api_pb2.ResolveProof) -> None:
            data = bytearray(getattr(proof, field))
            if not data:
                setattr(proof, field, bytes(rng.randrange(256) for _ in range(rng.randrange(9))))
                return
            choice = rng.randrange(4)
            at = rng.randrange(len(data))
            if choice == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif choice == 1:
                del data[at:]
            elif choice == 2:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            else:
                data = bytearray(rng.randrange(256) for _ in range(rng.randrange(70)))
            setattr(proof, field, bytes(data))

        return mutate

    def commit(proof: api_pb2.ResolveProof) -> None:
        choice = rng.randrange(5)
        if choice == 0:
            proof.commit.height = rng.choice([0, 2**63, 2**64 - 1, proof.commit.height + 1])
        elif choice == 1:
            proof.commit.round = rng.choice([1, 2**32 - 1])
        elif choice == 2:
            proof.commit.block_hash = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        elif choice == 3 and proof.commit.signatures:
            signature = proof.commit.signatures[rng.randrange(len(proof.commit.signatures))]
            signature.validator = signature.validator[: rng.randrange(33)]
        else:
            for signature in proof.commit.signatures:
                signature.signature = signature.signature[: rng.randrange(65)]

    fields = [flip("state_proof"), flip("header"), flip("record_bytes"), commit]
    while True:
        yield rng.choice(fields)


@pytest.mark.parametrize("identifier", ["88/Widget-1", "88/nothing-here"])
def test_malformed_proofs_fail_as_invalid_proof_never_another_exception(
    chain_with_items: LedgerChain, identifier: str
) -> None:
    _, genuine = chain_with_items.ledger.resolve_with_proof(identifier)
    expected = _verify(chain_with_items, identifier, genuine)
    rng = random.Random(2024)
    mutations = _mutations(rng)
    refused = 0
    for _ in range(600):
        attempt = _copy(genuine)
        for _ in range(rng.randrange(1, 3)):
            next(mutations)(attempt)
        try:
            result = _verify(chain_with_items, identifier, attempt)
        except SparkError as error:
            assert error.code == ErrorCode.INVALID_PROOF, error
            refused += 1
            continue
        # only a mutation that changed nothing that counts may pass, with the same answer
        assert result == expected, attempt
    assert refused > 500
