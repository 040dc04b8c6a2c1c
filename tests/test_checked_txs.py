"""A tx is decoded and its signature verified once per node (node/checked_txs.py): at
admission, not again in the block that holds it, and a body decoded without its signature
checked vouches for nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tx import check_signed_tx, tx_id
from sparkchain.node import checked_txs
from sparkchain.node.checked_txs import CheckedTxs
from sparkchain.proto import types_pb2 as pb
from tests.helpers.ledger import LedgerChain

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def decodings(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every envelope check the node's caches make: whether it verified the signature."""
    calls: list[bool] = []
    real: Callable[..., pb.TxBody] = checked_txs.check_envelope

    def counted(signed: pb.SignedTx, chain_id: str, verify_signature: bool = True) -> Any:
        calls.append(verify_signature)
        return real(signed, chain_id, verify_signature=verify_signature)

    monkeypatch.setattr(checked_txs, "check_envelope", counted)
    return calls


def test_a_tx_checked_at_admission_is_not_decoded_again_in_its_block(
    ledger_chain: LedgerChain, decodings: list[bool]
) -> None:
    now = ledger_chain.next_time_ms
    tx = ledger_chain.signer("acme").register("88/once", now_ms=now)
    ledger_chain.ledger.check_tx(tx, now)
    assert decodings == [True]
    # the block the proposer builds, and the same block validated from its bytes
    built = ledger_chain.build([tx])
    assert list(built.block.txs) == [tx]
    ledger_chain.ledger.validate_block(built.block_bytes)
    assert decodings == [True]


def test_the_verify_pools_decoding_is_the_one_the_rules_and_the_block_use(
    ledger_chain: LedgerChain, decodings: list[bool]
) -> None:
    now = ledger_chain.next_time_ms
    tx = ledger_chain.signer("acme").register("88/pool", now_ms=now)
    body = check_signed_tx(tx, ledger_chain.genesis.chain_id)  # what the verify pool does
    the_id = tx_id(tx, ledger_chain.ledger.hash_fn)
    checked = ledger_chain.ledger.check_tx(
        tx, now, verify_signature=False, the_tx_id=the_id, checked_body=body
    )
    assert checked is body
    ledger_chain.ledger.mark_signatures_verified([tx], [the_id])
    assert ledger_chain.build([tx]).rejected == []
    assert decodings == []


def test_a_body_decoded_without_its_signature_vouches_for_no_signature(
    ledger_chain: LedgerChain, decodings: list[bool]
) -> None:
    now = ledger_chain.next_time_ms
    forged = ledger_chain.signer("acme").register("88/forged", now_ms=now)
    forged.signature = bytes(64)
    ledger_chain.ledger.check_tx(forged, now, verify_signature=False)
    assert decodings == [False]
    with pytest.raises(SparkError) as caught:
        ledger_chain.ledger.check_tx(forged, now)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    built = ledger_chain.build([forged])
    assert list(built.block.txs) == []
    assert built.rejected[0][1].code is ErrorCode.BAD_SIGNATURE


def test_bodies_are_bounded_by_count_and_by_bytes(ledger_chain: LedgerChain) -> None:
    now = ledger_chain.next_time_ms
    acme = ledger_chain.signer("acme")
    txs = [acme.register(f"88/b{i}", now_ms=now) for i in range(4)]
    size = txs[0].ByteSize()
    chain_id = ledger_chain.genesis.chain_id
    by_count = CheckedTxs(chain_id, max_bodies=2, max_body_bytes=10 * size)
    by_bytes = CheckedTxs(chain_id, max_bodies=100, max_body_bytes=2 * size + 1)
    for cache in (by_count, by_bytes):
        for tx in txs:
            cache.body(tx, tx_id(tx), verify_signature=False, remember=True)
        kept = [tx for tx in txs if cache.known_body(tx, tx_id(tx)) is not None]
        assert kept == txs[2:]
    # a block's execution checks bodies without keeping them (a replayed chain's txs are
    # not met again)
    executed = CheckedTxs(chain_id)
    assert executed.body(txs[0], tx_id(txs[0]), verify_signature=False, remember=False).register
    assert executed.known_body(txs[0], tx_id(txs[0])) is None
    # a body over the byte bound alone is checked, and not kept
    tiny = CheckedTxs(chain_id, max_body_bytes=size - 1)
    assert tiny.body(txs[0], tx_id(txs[0]), verify_signature=False, remember=True).register
    assert tiny.known_body(txs[0], tx_id(txs[0])) is None
