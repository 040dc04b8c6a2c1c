"""Elastic per-signer admission rates (node/signer_rates.py, issue 10 attack 2b): a signer
alone is never limited; while another signer is active, each signer's client txs are
admitted at most at the contended rate, and the refusal says so."""

from __future__ import annotations

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_TX_BYTES
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.node.signer_rates import MAX_TRACKED_SIGNERS, SignerRates
from tests.helpers.chain import TxMaker, key
from tests.helpers.ledger import LedgerChain
from tests.test_mempool import NOW_MS, Clock, prefixes_by_root

FLOOD, OTHER = b"f" * 32, b"o" * 32


def test_a_signer_alone_is_never_limited() -> None:
    rates = SignerRates(txs_per_s=10, bytes_per_s=1000, active_window_ms=2000)
    for _ in range(1000):
        rates.check(FLOOD, 100, now_ms=0)
        rates.admitted(FLOOD, now_ms=0)


def test_while_another_signer_is_active_a_signer_gets_its_rate_and_no_more() -> None:
    rates = SignerRates(txs_per_s=10, bytes_per_s=10_000, active_window_ms=2000)
    rates.admitted(OTHER, now_ms=0)
    for _ in range(10):  # one second of burst
        rates.check(FLOOD, 100, now_ms=0)
    with pytest.raises(SparkError) as refused:
        rates.check(FLOOD, 100, now_ms=0)
    assert refused.value.code is ErrorCode.MEMPOOL_FULL
    assert FLOOD.hex() in refused.value.message and "10 txs" in refused.value.message
    rates.check(FLOOD, 100, now_ms=100)  # 0.1 s refills one tx
    with pytest.raises(SparkError):
        rates.check(FLOOD, 100, now_ms=100)
    # the other signer went quiet: past the window the flood is a signer alone again
    for _ in range(50):
        rates.check(FLOOD, 100, now_ms=2101)


def test_bytes_are_limited_too_but_one_largest_tx_always_fits() -> None:
    rates = SignerRates(txs_per_s=100, bytes_per_s=1000, active_window_ms=2000)
    rates.admitted(OTHER, now_ms=0)
    rates.check(FLOOD, MAX_TX_BYTES, now_ms=0)
    with pytest.raises(SparkError):
        rates.check(FLOOD, 1000, now_ms=0)
    rates.check(FLOOD, 1000, now_ms=1000)


def test_a_charge_alone_does_not_make_a_signer_active() -> None:
    # a refused or failing tx proves nothing about its claimed signer
    rates = SignerRates(txs_per_s=1, bytes_per_s=1000, active_window_ms=2000)
    rates.check(OTHER, 10, now_ms=0)
    for _ in range(5):
        rates.check(FLOOD, 10, now_ms=0)


async def test_the_mempool_refuses_a_flooding_client_signer_while_another_is_active(
    ledger_chain: LedgerChain,
) -> None:
    mempool = Mempool(
        ledger_chain.ledger,
        MempoolLimits(signer_share_percent=100),
        None,
        clock_ms=Clock(),
        signer_rates=SignerRates(txs_per_s=5, bytes_per_s=1 << 20, active_window_ms=2000),
    )
    (other,) = prefixes_by_root(ledger_chain, 1)
    await mempool.add(other)
    maker = TxMaker(ledger_chain.genesis.chain_id, key("acme"), 9)
    flood = [maker.register(f"88/R-{i}", now_ms=NOW_MS) for i in range(8)]
    results = await mempool.add_many(flood)
    refused = [r.error.code for r in results if r.error is not None]
    assert sum(r.error is None for r in results) == 5
    assert refused == [ErrorCode.MEMPOOL_FULL] * 3
    # gossip from a validator is not limited here: its own node limited its client
    more = [maker.register(f"88/G-{i}", now_ms=NOW_MS) for i in range(8)]
    assert all(r.error is None for r in await mempool.add_from_peer(more, peer="node2"))


def test_made_up_signers_cannot_reset_an_active_flood_or_grow_without_bound() -> None:
    rates = SignerRates(txs_per_s=2, bytes_per_s=1000, active_window_ms=2000)
    rates.admitted(OTHER, now_ms=0)
    rates.check(FLOOD, 10, now_ms=0)
    rates.check(FLOOD, 10, now_ms=0)
    for n in range(MAX_TRACKED_SIGNERS + 10):  # claimed, never verified, never admitted
        rates.check(n.to_bytes(32, "big"), 10, now_ms=0)
        if n % 1000 == 0:
            with pytest.raises(SparkError):  # the flood's bucket, charged last, stays
                rates.check(FLOOD, 10, now_ms=0)
    assert len(rates._buckets) <= MAX_TRACKED_SIGNERS
