"""Validator-set changes on a ledger on disk (DESIGN §12): the header of each height
commits to the set of the next one, certificates are checked against the set of their
height, and the schedule is in the state tree and survives a restart."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from sparkchain.consensus.messages import VoteType
from sparkchain.consensus.signbytes import chain_prefix, vote_sign_bytes
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import VOTE_TAG
from sparkchain.ledger import blocks, smt, validators
from sparkchain.node.ledger import BuiltBlock, Ledger
from sparkchain.node.snapshot_restore import (
    snapshot_change_heights,
    verify_snapshot,
)
from sparkchain.node.snapshot_write import restore_snapshot
from sparkchain.node.snapshots import SnapshotStore, cut_chunks, snapshot_entries
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import RulesChain, governance_tx, key, update
from tests.helpers.ledger import LedgerChain

OLD = ("validator1", "validator2", "validator3", "validator4")
NEW = ("validator1", "validator2", "validator3", "validator5")


def _keys(names: Iterable[str]) -> list[bytes]:
    return [key(name).public_key for name in names]


def _certificate(
    chain: LedgerChain, built: BuiltBlock, signers: Iterable[str]
) -> pb.CommitCertificate:
    height = built.pending.height
    sign_bytes = vote_sign_bytes(
        chain_prefix(chain.genesis.chain_id), VoteType.PRECOMMIT, height, 0, built.block_hash
    )
    cert = pb.CommitCertificate(height=height, round=0, block_hash=built.block_hash)
    for name in signers:
        cert.signatures.add(
            validator=key(name).public_key, signature=key(name).sign(VOTE_TAG, sign_bytes)
        )
    return cert


def _replace_node4_with_node5(chain: LedgerChain) -> pb.SignedTx:
    # governance_tx only reads the clock of the chain it is given
    clock = RulesChain(chain.genesis)
    clock.time_ms = chain.next_time_ms
    return governance_tx(clock, update(remove=["node4"], add=[("node5", "validator5")]))


@pytest.fixture
def changed(tmp_path: Path) -> LedgerChain:
    """Block 1 replaces node4 by node5 (effective at 3); block 2 is still the old set's."""
    chain = LedgerChain(tmp_path / "ledger")
    chain.commit([_replace_node4_with_node5(chain)])
    chain.commit()
    return chain


def test_headers_commit_to_the_set_of_the_next_height(changed: LedgerChain) -> None:
    ledger = changed.ledger
    first, second = (pb.BlockHeader.FromString(ledger.get_block(h)[0].header) for h in (1, 2))
    assert first.validators_hash == blocks.validators_hash(_keys(OLD))
    assert second.validators_hash == blocks.validators_hash(_keys(NEW))
    assert ledger.validators_at(2) == tuple(_keys(OLD))
    assert ledger.validators_at(3) == tuple(_keys(NEW))
    assert ledger.validators == tuple(_keys(NEW))


def test_the_new_set_certifies_the_change_height_and_the_old_one_cannot(
    changed: LedgerChain,
) -> None:
    third = changed.build()
    changed.ledger.commit_block(third.pending, _certificate(changed, third, NEW[:3]))
    old_quorum = _certificate(changed, third, ("validator1", "validator2", "validator4"))
    with pytest.raises(SparkError) as caught:
        changed.ledger.build_block(
            [], changed.next_time_ms, key("validator1").public_key, old_quorum
        )
    assert caught.value.code is ErrorCode.INVALID_BLOCK
    assert "last_commit" in caught.value.message
    # a removed validator cannot propose any more
    with pytest.raises(SparkError):
        changed.ledger.build_block([], changed.next_time_ms, key("validator4").public_key)
    fourth = changed.build()
    changed.ledger.commit_block(fourth.pending, _certificate(changed, fourth, NEW[1:]))
    assert changed.ledger.height == 4


def test_a_header_with_the_old_sets_hash_is_refused(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    chain.commit([_replace_node4_with_node5(chain)])
    built = chain.build()
    header = pb.BlockHeader()
    header.CopyFrom(built.pending.header)
    header.validators_hash = blocks.validators_hash(_keys(OLD))
    forged = pb.Block()
    forged.CopyFrom(built.block)
    forged.header = blocks.encode_header(header)
    with pytest.raises(SparkError) as caught:
        chain.ledger.validate_block(forged.SerializeToString(deterministic=True))
    assert caught.value.code is ErrorCode.INVALID_BLOCK
    assert caught.value.message.startswith("validators_hash")


def test_the_schedule_is_proved_by_the_state_root_and_survives_a_restart(
    changed: LedgerChain,
) -> None:
    ledger = changed.ledger
    schedule_bytes = ledger.db.get(b"mvalidators")
    assert schedule_bytes is not None
    proof = smt.prove(ledger._tree_store, ledger.state_root, smt.validators_tree_key())
    assert smt.verify_proof(ledger.state_root, smt.validators_tree_key(), schedule_bytes, proof)
    changed.reopen()
    assert changed.ledger.validators_at(3) == tuple(_keys(NEW))
    assert changed.ledger.validators_at(1) == tuple(_keys(OLD))
    history = changed.ledger.validator_changes()
    assert [(s.from_height, s.decided_height) for s in history] == [(3, 1)]
    assert validators.keys_at(
        validators.decode_schedule(schedule_bytes, ErrorCode.STORAGE_CORRUPT), 3
    ) == tuple(_keys(NEW))


def test_sets_beyond_two_heights_ahead_are_not_known(changed: LedgerChain) -> None:
    with pytest.raises(SparkError) as caught:
        changed.ledger.validators_at(changed.ledger.height + 3)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_verified_approvals_do_not_vouch_for_a_forged_copy(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    genuine = _replace_node4_with_node5(chain)
    chain.ledger.check_tx(genuine, chain.next_time_ms)  # verified once, remembered
    forged = pb.SignedTx()
    forged.CopyFrom(genuine)
    forged.approvals[0].signature = bytes(64)
    with pytest.raises(SparkError) as caught:
        chain.ledger.check_tx(forged, chain.next_time_ms)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE


def _proof_at(chain: LedgerChain):
    from sparkchain.ledger.proof import verify_resolution

    _, proof = chain.ledger.resolve_with_proof("88/none")
    return proof, lambda p: verify_resolution(_keys(OLD), chain.genesis.chain_id, "88/none", p)


def test_a_client_follows_the_changes_from_the_genesis_at_every_height(
    changed: LedgerChain,
) -> None:
    from sparkchain.ledger.proof import ProofError, ProofFailure

    for height in range(3, 7):
        signers = NEW[:3] if height % 2 else NEW[1:]
        built = changed.build()
        changed.ledger.commit_block(built.pending, _certificate(changed, built, signers))
        proof, verify = _proof_at(changed)
        assert len(proof.validator_changes) == 1
        assert verify(proof) == (None, height)
    # without the change, the header's signers are not the genesis set's quorum
    proof, verify = _proof_at(changed)
    del proof.validator_changes[:]
    with pytest.raises(ProofError) as caught:
        verify(proof)
    assert caught.value.reason in (ProofFailure.WRONG_VALIDATORS, ProofFailure.UNKNOWN_SIGNER)
    # a change that names other keys than its header commits to
    proof, verify = _proof_at(changed)
    proof.validator_changes[0].validators[3] = key("mallory").public_key
    with pytest.raises(ProofError) as caught:
        verify(proof)
    assert caught.value.reason is ProofFailure.WRONG_VALIDATORS


def test_at_the_height_before_the_change_the_proof_names_the_next_set(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    chain.commit([_replace_node4_with_node5(chain)])
    proof, verify = _proof_at(chain)
    assert proof.validator_changes == []  # block 1 commits to the set of 2: the genesis's
    assert verify(proof) == (None, 1)
    chain.commit()
    proof, verify = _proof_at(chain)
    assert len(proof.validator_changes) == 1  # block 2 is the change's own header
    assert verify(proof) == (None, 2)


def _committed(chain: LedgerChain, height: int) -> peer_pb2.CommittedBlock:
    block, _, cert = chain.ledger.get_block(height)
    assert cert is not None
    return peer_pb2.CommittedBlock(block=block, commit=cert)


def test_a_snapshot_after_changes_is_checked_through_them_and_restores_the_last_set(
    changed: LedgerChain, tmp_path: Path
) -> None:
    """Block 3 rotates node1's key (effective at 5); a snapshot at 6 is certified by a set
    the genesis never saw, through blocks 2 and 4."""
    clock = RulesChain(changed.genesis)
    clock.time_ms = changed.next_time_ms
    rotation = governance_tx(clock, update(rotate=[("node1", "validator6")]), NEW[:3], nonce=2)
    newest = ("validator6", "validator2", "validator3", "validator5")
    acme = changed.signer("acme")
    for height in range(3, 7):
        now = changed.next_time_ms
        txs = [acme.register(f"88/m{height}-{i}", now_ms=now) for i in range(10)]
        built = changed.ledger.build_block(
            [rotation, *txs] if height == 3 else txs, now, key("validator2").public_key
        )
        signers = NEW[:3] if height < 5 else newest[:3]
        changed.ledger.commit_block(built.pending, _certificate(changed, built, signers))
    ledger = changed.ledger
    store = SnapshotStore(tmp_path / "snapshots", 1, changed.genesis.hash_fn)
    entries = snapshot_entries(ledger.db, ledger.state_root)
    # a chunk per entry: the sets' entries sort last, each in a chunk of its own
    manifest = store.write(
        ledger.height, ledger.last_block_hash, ledger.state_root, cut_chunks(entries, 1)
    )
    chunks = [store.chunk(manifest.height, i) for i in range(len(manifest.chunk_hashes))]
    assert snapshot_change_heights(chunks, manifest.height) == [2, 4]
    base = _committed(changed, manifest.height)
    for missing in ([], [_committed(changed, 2)]):  # block 6's signers are not those known
        with pytest.raises(SparkError) as caught:
            verify_snapshot(changed.genesis, manifest, chunks, base, missing)
        assert caught.value.code is ErrorCode.INVALID_PROOF
    changes = [_committed(changed, 2), _committed(changed, 4)]
    with Ledger.open(tmp_path / "restored", changed.genesis) as restored:
        restore_snapshot(restored, manifest, chunks, base, changes)
        assert restored.state_root == ledger.state_root
        assert restored.validators == tuple(_keys(newest))
        assert restored.validators_at(manifest.height + 1) == tuple(_keys(newest))
