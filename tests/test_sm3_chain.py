"""The chain's hash chosen at genesis (issue 16): SM3 known answers from GB/T 32905-2016,
the genesis option, and a ledger whose tx ids, tx root, block hashes, state tree and proofs
all use SM3 while a SHA-256 chain keeps its bytes (identifiers/hashing.py, ledger/)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashAlgorithm, parse_hash_algorithm, sha256, sm3
from sparkchain.identifiers.tags import GENESIS_TAG
from sparkchain.identifiers.tx import TxBuilder, tx_id
from sparkchain.ledger import blocks, smt
from sparkchain.ledger.bundle import build_bundle, verify_bundle
from sparkchain.ledger.genesis import genesis_to_json, parse_genesis
from sparkchain.ledger.proof import ProofError, ProofFailure
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import bid_of, make_test_genesis, sm2_key, value
from tests.helpers.ledger import LedgerChain, register_widget

# GB/T 32905-2016 appendix A: example 1 ("abc") and example 2 ("abcd" x 16, 64 bytes)
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD_16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm3_gives_the_standards_examples() -> None:
    assert sm3(b"abc").hex() == SM3_ABC
    assert sm3(b"abcd" * 16).hex() == SM3_ABCD_16
    assert sha256(b"abc") == hashlib.sha256(b"abc").digest()


def test_unknown_hash_names_are_refused() -> None:
    with pytest.raises(SparkError) as caught:
        parse_hash_algorithm("md5")
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert "sha256, sm3" in caught.value.message


def _genesis_json(**extra: object) -> bytes:
    data = json.loads(genesis_to_json(make_test_genesis()))
    data.update(extra)
    return json.dumps(data).encode()


def test_genesis_hash_option_is_sha256_by_default_and_keeps_old_genesis_hashes() -> None:
    plain = parse_genesis(_genesis_json())
    explicit = parse_genesis(_genesis_json(hash="sha256"))
    assert plain.hash_algorithm is explicit.hash_algorithm is HashAlgorithm.SHA256
    assert plain.genesis_hash == explicit.genesis_hash
    # the canonical form of a SHA-256 genesis has no "hash" field, as before the option
    canonical = json.dumps(
        json.loads(genesis_to_json(plain)), sort_keys=True, separators=(",", ":")
    ).encode()
    assert "hash" not in json.loads(genesis_to_json(plain))
    assert plain.genesis_hash == hashlib.sha256(GENESIS_TAG + canonical).digest()


def test_sm3_genesis_round_trips_and_hashes_with_sm3() -> None:
    genesis = parse_genesis(_genesis_json(hash="sm3"))
    assert genesis.hash_algorithm is HashAlgorithm.SM3
    again = parse_genesis(genesis_to_json(genesis).encode())
    assert again.hash_algorithm is HashAlgorithm.SM3
    assert again.genesis_hash == genesis.genesis_hash
    canonical = json.dumps(
        json.loads(genesis_to_json(genesis)), sort_keys=True, separators=(",", ":")
    ).encode()
    assert genesis.genesis_hash == sm3(GENESIS_TAG + canonical)


@pytest.mark.parametrize(
    ("hash_value", "message"),
    [("sha3", "genesis.json: hash: 'sha3' is not one of 'sha256', 'sm3'"), (3, "must be a string")],
)
def test_bad_hash_in_genesis_names_the_field(hash_value: object, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_genesis(_genesis_json(hash=hash_value))
    assert caught.value.code is ErrorCode.INVALID_GENESIS
    assert message in caught.value.message


def _sm3_chain(tmp_path: Path) -> LedgerChain:
    genesis = make_test_genesis(hash_algorithm=HashAlgorithm.SM3)
    return LedgerChain(tmp_path / "sm3", genesis)


def test_an_sm3_ledger_hashes_everything_with_sm3(tmp_path: Path) -> None:
    chain = _sm3_chain(tmp_path)
    first = register_widget(chain)
    header_bytes = first.block.header
    assert first.block_hash == sm3(header_bytes) != sha256(header_bytes)
    assert first.pending.tx_ids == (sm3(first.block.txs[0].body),)
    header = pb.BlockHeader.FromString(header_bytes)
    assert header.prev_hash == chain.genesis.genesis_hash
    assert header.tx_root == blocks.tx_root([sm3(first.block.txs[0].body)], sm3)
    assert header.validators_hash == blocks.validators_hash(chain.genesis.validator_keys, sm3)
    second = chain.commit()
    assert pb.BlockHeader.FromString(second.block.header).last_commit_hash == (
        blocks.certificate_hash(second.block.last_commit, sm3)
    )
    # the state tree: the record's tree key and leaf are SM3's, and its proof checks with SM3
    _, proof = chain.ledger.resolve_with_proof("88/widget-1")
    root = pb.BlockHeader.FromString(proof.header).state_root
    key = smt.record_tree_key("88/WIDGET-1", sm3)
    assert smt.verify_proof(root, key, proof.record_bytes, proof.state_proof, sm3)
    assert not smt.verify_proof(
        root, smt.record_tree_key("88/WIDGET-1"), proof.record_bytes, proof.state_proof
    )
    chain.reopen()  # a reopened SM3 ledger continues the same chain
    assert chain.ledger.height == 2 and chain.commit().pending.height == 3
    chain.close()


def test_same_txs_give_other_roots_on_sha256_and_sm3_chains(tmp_path: Path) -> None:
    roots = {}
    for algorithm in HashAlgorithm:
        genesis = make_test_genesis(hash_algorithm=algorithm)
        chain = LedgerChain(tmp_path / algorithm.value, genesis)
        built = register_widget(chain)
        roots[algorithm] = pb.BlockHeader.FromString(built.block.header).state_root
        chain.close()
    assert roots[HashAlgorithm.SHA256] != roots[HashAlgorithm.SM3]


def test_sm2_signed_registration_on_an_sm3_chain_has_a_verifying_bundle(tmp_path: Path) -> None:
    chain = _sm3_chain(tmp_path)
    alice = sm2_key("alice")
    acme = chain.signer("acme")
    chain.commit([acme.set_registrars("88", add=[bid_of(alice)], now_ms=chain.next_time_ms)])
    maker = TxBuilder(chain.genesis.chain_id, alice, random.Random(3))
    signed = maker.register("88/SN-1", [value(1, "URL", "https://a")], now_ms=chain.next_time_ms)
    built = chain.commit([signed])
    assert built.pending.tx_ids == (tx_id(signed, sm3),)
    _, proof = chain.ledger.resolve_with_proof("88/SN-1")
    bundle = build_bundle(chain.genesis, "88/SN-1", proof)
    verified = verify_bundle(bundle, chain.genesis)
    assert verified.record is not None and verified.record.owner == bid_of(alice)
    # the same bundle against a SHA-256 genesis of otherwise the same content is refused
    sha_genesis = make_test_genesis()
    with pytest.raises(ProofError) as refused:
        verify_bundle(dict(bundle, genesis_hash=sha_genesis.genesis_hash.hex()), sha_genesis)
    assert refused.value.reason is ProofFailure.WRONG_VALIDATORS  # its first SM3 hash
    chain.close()
