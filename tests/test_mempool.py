"""Mempool admission, bounds, block building and clean-up, against a real ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import CONTENDED_SIGNER_BLOCK_BYTES
from sparkchain.identifiers.tx import sign_body_bytes, tx_id, value
from sparkchain.node.events import CommitBus
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import TxMaker, bid_of, key
from tests.helpers.ledger import LedgerChain, certificate, proposer

NOW_MS = 1_764_000_100_000  # after the test genesis time


class CountingExecutor(Executor):
    """A thread pool that counts the tasks it ran (the signature checks)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2)
        self.tasks = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.tasks += 1
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        self._pool.shutdown(wait=wait)


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    pool = CountingExecutor()
    yield pool
    pool.shutdown()


def make_mempool(
    chain: LedgerChain,
    executor: Executor | None = None,
    limits: MempoolLimits | None = None,
    bus: CommitBus | None = None,
    clock: Clock | None = None,
) -> Mempool:
    return Mempool(
        chain.ledger, limits or MempoolLimits(), executor, bus=bus, clock_ms=clock or Clock()
    )


def acme(chain: LedgerChain, seed: int = 7) -> TxMaker:
    return TxMaker(chain.genesis.chain_id, key("acme"), seed)


def registrations(chain: LedgerChain, count: int, seed: int = 7) -> list[pb.SignedTx]:
    maker = acme(chain, seed)
    return [
        maker.register(f"88/N{seed}-{i}", [value(1, "URL", f"u{i}")], now_ms=NOW_MS)
        for i in range(count)
    ]


def commit(chain: LedgerChain, mempool: Mempool, bus: CommitBus | None = None) -> list[bytes]:
    txs = mempool.take(10_000, 1 << 30)
    built = chain.ledger.build_block(txs, NOW_MS, proposer(chain.genesis))
    mempool.drop_rejected(built.rejected)
    height = built.pending.height
    chain.ledger.commit_block(built.pending, certificate(chain.genesis, height, built.block_hash))
    ids = list(built.pending.tx_ids)
    mempool.remove(ids)
    if bus is not None:
        bus.publish_block(height, ids, chain.ledger.changes_at(height))
    return ids


async def test_admission_checks_the_signature_in_the_thread_pool(ledger_chain, executor):
    mempool = make_mempool(ledger_chain, executor)
    (tx,) = registrations(ledger_chain, 1)
    assert await mempool.add(tx) == tx_id(tx)
    assert executor.tasks == 1 and len(mempool) == 1
    forged = pb.SignedTx()
    forged.CopyFrom(registrations(ledger_chain, 1, seed=8)[0])
    forged.signature = bytes(reversed(forged.signature))
    with pytest.raises(SparkError) as caught:
        await mempool.add(forged)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    assert len(mempool) == 1


async def test_a_batch_is_verified_in_chunks_and_each_tx_gets_its_answer(ledger_chain, executor):
    mempool = make_mempool(ledger_chain, executor)
    txs = registrations(ledger_chain, 150)
    txs[3] = TxMaker(ledger_chain.genesis.chain_id, key("mallory"), 1).register(
        "88/M", now_ms=NOW_MS
    )
    results = await mempool.add_many(txs)
    assert executor.tasks == 3  # 150 signatures in chunks of 64
    assert [r.tx_id for r in results] == [tx_id(t) for t in txs]
    assert results[3].error is not None and results[3].error.code is ErrorCode.UNAUTHORIZED
    assert sum(r.error is None for r in results) == 149 == len(mempool)


async def test_rules_are_checked_against_the_latest_state(ledger_chain):
    mempool = make_mempool(ledger_chain)
    first, second = registrations(ledger_chain, 1, seed=1)[0], None
    await mempool.add(first)
    commit(ledger_chain, mempool)
    second = acme(ledger_chain, seed=2).register("88/N1-0", now_ms=NOW_MS)  # same identifier
    with pytest.raises(SparkError) as caught:
        await mempool.add(second)
    assert caught.value.code is ErrorCode.EXISTS
    with pytest.raises(SparkError) as caught:
        await mempool.add(first)  # committed: the ledger knows its id
    assert caught.value.code is ErrorCode.DUPLICATE_TX


async def test_the_same_tx_twice_at_once_is_admitted_once(ledger_chain, executor):
    mempool = make_mempool(ledger_chain, executor)
    (tx,) = registrations(ledger_chain, 1)
    results = await asyncio.gather(mempool.add(tx), mempool.add(tx), return_exceptions=True)
    errors = [r for r in results if isinstance(r, SparkError)]
    assert len(errors) == 1 and errors[0].code is ErrorCode.DUPLICATE_TX
    assert len(mempool) == 1
    (again,) = await mempool.add_many([tx])
    assert again.error is not None and again.error.code is ErrorCode.DUPLICATE_TX


async def test_expired_and_too_early_txs_are_refused(ledger_chain):
    mempool = make_mempool(ledger_chain)
    maker = acme(ledger_chain)
    stale = maker.register("88/OLD", now_ms=NOW_MS - 10_000, lifetime_ms=1000)
    early = maker.register("88/FAR", now_ms=NOW_MS, lifetime_ms=2 * 3_600_000)
    for tx in (stale, early):
        with pytest.raises(SparkError) as caught:
            await mempool.add(tx)
        assert caught.value.code is ErrorCode.EXPIRED
    assert len(mempool) == 0


async def test_full_by_count_or_bytes_refuses_with_mempool_full(ledger_chain):
    by_count = make_mempool(
        ledger_chain, limits=MempoolLimits(max_txs=3, max_bytes=1 << 20, signer_share_percent=100)
    )
    txs = registrations(ledger_chain, 4)
    for tx in txs[:3]:
        await by_count.add(tx)
    with pytest.raises(SparkError) as caught:
        await by_count.add(txs[3])
    assert caught.value.code is ErrorCode.MEMPOOL_FULL and "limit 3" in caught.value.message

    size = txs[0].ByteSize()
    by_bytes = make_mempool(
        ledger_chain,
        limits=MempoolLimits(max_txs=100, max_bytes=2 * size + 10, signer_share_percent=100),
    )
    results = await by_bytes.add_many(txs)
    assert [r.error is None for r in results] == [True, True, False, False]
    assert results[2].error is not None and "bytes" in results[2].error.message
    assert by_bytes.size_bytes == txs[0].ByteSize() + txs[1].ByteSize()


async def test_take_keeps_arrival_order_and_limits_and_remove_frees_room(ledger_chain):
    mempool = make_mempool(
        ledger_chain, limits=MempoolLimits(max_txs=5, max_bytes=1 << 20, signer_share_percent=100)
    )
    txs = registrations(ledger_chain, 5)
    for tx in txs:
        await mempool.add(tx)
    assert mempool.take(3, 1 << 20) == txs[:3]
    assert mempool.take(10, txs[0].ByteSize() + txs[1].ByteSize()) == txs[:2]
    assert mempool.take(10, 1) == []
    assert mempool.remove([tx_id(txs[0]), tx_id(txs[1]), b"unknown"]) == 2
    assert mempool.take(10, 1 << 20) == txs[2:]
    await mempool.add(registrations(ledger_chain, 1, seed=9)[0])
    assert len(mempool) == 4


async def test_the_oldest_tx_is_taken_even_beyond_the_budget_but_never_beyond_a_block(ledger_chain):
    mempool = make_mempool(ledger_chain)
    txs = registrations(ledger_chain, 3)
    for tx in txs:
        await mempool.add(tx)
    size = txs[0].ByteSize()
    # a learned budget smaller than the oldest tx: it still goes, alone
    assert mempool.take(10, 1 << 20, budget_bytes=size - 1) == txs[:1]
    assert mempool.take(10, 1 << 20, budget_bytes=size + 1) == txs[:1]
    assert mempool.take(10, 1 << 20, budget_bytes=2 * size) == txs[:2]
    smallest = min(tx.ByteSize() for tx in txs)
    assert mempool.take(10, smallest - 1, budget_bytes=1 << 20) == []  # never past max_bytes


async def test_a_tx_that_can_never_fit_a_block_is_refused_too_large(ledger_chain):
    (tx,) = registrations(ledger_chain, 1)
    limit = tx.ByteSize() - 1
    mempool = make_mempool(ledger_chain, limits=MempoolLimits(max_block_bytes=limit))
    with pytest.raises(SparkError) as raised:
        await mempool.add(tx)
    (from_peer,) = await mempool.add_from_peer([tx], "peer")
    for error in (raised.value, from_peer.error):
        assert error is not None and error.code is ErrorCode.TOO_LARGE
        assert f"consensus.max_block_bytes = {limit}" in error.message
    assert len(mempool) == 0


def prefixes_by_root(
    chain: LedgerChain, count: int, lifetime_ms: int = 600_000
) -> list[pb.SignedTx]:
    """Valid txs of a second signer (the root authority creates prefixes)."""
    root = TxMaker(chain.genesis.chain_id, key("root"), 3)
    return [
        root.create_prefix(f"7{i}", bid_of("acme"), now_ms=NOW_MS, lifetime_ms=lifetime_ms)
        for i in range(count)
    ]


async def test_one_signer_holds_at_most_its_share_of_the_mempool(ledger_chain):
    # 25% of 8 txs: 2 txs per signer
    mempool = make_mempool(ledger_chain, limits=MempoolLimits(max_txs=8, signer_share_percent=25))
    flood = registrations(ledger_chain, 3)
    results = await mempool.add_from_peer(flood, "node2")
    assert [r.error is None for r in results] == [True, True, False]
    error = results[2].error
    assert error is not None and error.code is ErrorCode.MEMPOOL_FULL
    assert "MEMPOOL_SIGNER_SHARE_PERCENT" in error.message
    assert "mempool.max_txs = 2" in error.message
    await mempool.add(prefixes_by_root(ledger_chain, 1)[0])  # another signer still gets in
    size = flood[0].ByteSize()
    by_bytes = make_mempool(
        ledger_chain, limits=MempoolLimits(max_bytes=4 * size - 4, signer_share_percent=25)
    )
    with pytest.raises(SparkError) as caught:
        await by_bytes.add(flood[0])  # a quarter of the bytes is just short of one tx
    assert "mempool.max_bytes" in caught.value.message


async def test_a_full_mempool_drops_expired_txs_to_make_room(ledger_chain):
    bus = CommitBus()
    clock = Clock()
    limits = MempoolLimits(max_txs=2, signer_share_percent=100)
    mempool = make_mempool(ledger_chain, limits=limits, bus=bus, clock=clock)
    short_lived = prefixes_by_root(ledger_chain, 2, lifetime_ms=1000)
    for tx in short_lived:
        await mempool.add(tx)
    waiter = asyncio.ensure_future(bus.wait_for_tx(tx_id(short_lived[0]), 5))
    await asyncio.sleep(0)
    clock.now_ms += 2000  # they expired; nobody swept yet
    fresh = acme(ledger_chain).register("88/FRESH", now_ms=clock.now_ms)
    assert await mempool.add(fresh) == tx_id(fresh)
    assert len(mempool) == 1
    with pytest.raises(SparkError) as caught:
        await waiter
    assert caught.value.code is ErrorCode.EXPIRED


async def test_a_full_mempool_evicts_the_newest_tx_of_the_signer_holding_most(ledger_chain):
    bus = CommitBus()
    mempool = make_mempool(
        ledger_chain, limits=MempoolLimits(max_txs=3, signer_share_percent=100), bus=bus
    )
    first_come = registrations(ledger_chain, 3)
    for tx in first_come:
        await mempool.add(tx)
    waiter = asyncio.ensure_future(bus.wait_for_tx(tx_id(first_come[2]), 5))
    await asyncio.sleep(0)
    late, later = prefixes_by_root(ledger_chain, 2)
    assert await mempool.add(late) == tx_id(late)  # acme held 3, root none: acme's newest goes
    assert tx_id(first_come[2]) not in mempool and len(mempool) == 3
    with pytest.raises(SparkError) as caught:
        await waiter
    assert caught.value.code is ErrorCode.MEMPOOL_FULL
    with pytest.raises(SparkError) as caught:
        await mempool.add(later)  # 2 and 2 then: even, nobody is evicted
    assert caught.value.code is ErrorCode.MEMPOOL_FULL
    # a block takes one tx of each signer in turn
    assert mempool.take(10, 1 << 20) == [first_come[0], late, first_come[1]]


async def test_an_observer_refuses_client_txs_it_could_not_pass_on(ledger_chain):
    mempool = Mempool(ledger_chain.ledger, MempoolLimits(), None, takes_client_txs=False)
    with pytest.raises(SparkError) as caught:
        await mempool.add(registrations(ledger_chain, 1)[0])
    assert caught.value.code is ErrorCode.UNAVAILABLE and "validator" in caught.value.message
    assert len(mempool) == 0


async def test_rejected_and_expired_txs_leave_and_their_waiters_hear_why(ledger_chain):
    bus = CommitBus()
    clock = Clock()
    mempool = make_mempool(ledger_chain, bus=bus, clock=clock)
    maker = acme(ledger_chain)
    first = maker.register("88/R", now_ms=NOW_MS)
    rival = acme(ledger_chain, seed=99).register("88/R", now_ms=NOW_MS)
    short = maker.register("88/SHORT", now_ms=NOW_MS, lifetime_ms=500)
    for tx in (first, rival, short):
        await mempool.add(tx)
    rival_wait = asyncio.ensure_future(bus.wait_for_tx(tx_id(rival), 5))
    short_wait = asyncio.ensure_future(bus.wait_for_tx(tx_id(short), 5))
    await asyncio.sleep(0)
    assert mempool.drop_expired(NOW_MS + 1000) == 1
    with pytest.raises(SparkError) as caught:
        await short_wait
    assert caught.value.code is ErrorCode.EXPIRED
    committed = commit(ledger_chain, mempool, bus)
    assert committed == [tx_id(first)]
    with pytest.raises(SparkError) as caught:
        await rival_wait
    assert caught.value.code is ErrorCode.EXISTS
    assert len(mempool) == 0 and mempool.size_bytes == 0


async def test_admitted_hooks_fire_once_per_batch_with_the_origin(ledger_chain, caplog):
    mempool = make_mempool(ledger_chain)
    seen: list[tuple[int, str | None]] = []

    def broken_hook(txs: list[pb.SignedTx], origin: str | None) -> None:
        raise RuntimeError("gossip is down")

    mempool.on_admitted.append(lambda txs, origin: seen.append((len(txs), origin)))
    mempool.on_admitted.append(broken_hook)
    txs = registrations(ledger_chain, 3)
    results = await mempool.add_from_peer([*txs, txs[0]], peer="node2")
    assert [r.error is None for r in results] == [True, True, True, False]
    await mempool.add(registrations(ledger_chain, 1, seed=3)[0])
    assert seen == [(3, "node2"), (1, None)]
    assert "gossip is down" in caplog.text


async def test_admitted_signatures_are_not_verified_again_by_blocks(ledger_chain, monkeypatch):
    mempool = make_mempool(ledger_chain)
    txs = registrations(ledger_chain, 3)
    await mempool.add_many(txs)

    def no_verification(*args: object) -> None:
        raise AssertionError("signature verified twice")

    monkeypatch.setattr("sparkchain.identifiers.tx.signature_is_valid", no_verification)
    assert commit(ledger_chain, mempool) == [tx_id(t) for t in txs]


async def test_a_gossiped_tx_that_breaks_a_rule_is_refused_before_it_takes_room(ledger_chain):
    mempool = make_mempool(ledger_chain)
    foreign = TxMaker(ledger_chain.genesis.chain_id, key("mallory"), 1).register(
        "88/M", now_ms=NOW_MS
    )
    good = registrations(ledger_chain, 1)
    results = await mempool.add_from_peer([foreign, *good], peer="node2")
    assert [r.error.code if r.error else None for r in results] == [ErrorCode.UNAUTHORIZED, None]
    assert len(mempool) == 1 and mempool.size_bytes == good[0].ByteSize()


async def test_gossiped_txs_are_checked_for_signature_expiry_and_replay(ledger_chain):
    bus = CommitBus()
    mempool = make_mempool(ledger_chain, bus=bus)
    old, recent = registrations(ledger_chain, 2, seed=5)
    await mempool.add(old)
    commit(ledger_chain, mempool)  # the bus does not hear of it: only the ledger knows
    await mempool.add(recent)
    commit(ledger_chain, mempool, bus)
    maker = acme(ledger_chain, seed=6)
    forged = pb.SignedTx()
    forged.CopyFrom(maker.register("88/FORGED", now_ms=NOW_MS))
    forged.signature = bytes(reversed(forged.signature))
    stale = maker.register("88/OLD", now_ms=NOW_MS - 10_000, lifetime_ms=1000)
    early = maker.register("88/FAR", now_ms=NOW_MS, lifetime_ms=2 * 3_600_000)
    fine = maker.register("88/FINE", now_ms=NOW_MS)
    results = await mempool.add_from_peer([forged, stale, early, recent, old, fine], "node2")
    codes = [r.error.code if r.error else None for r in results]
    assert codes == [
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.EXPIRED,
        ErrorCode.EXPIRED,
        ErrorCode.DUPLICATE_TX,  # the commit bus remembers it
        ErrorCode.DUPLICATE_TX,  # committed before the bus remembers: the ledger knows it
        None,
    ]
    assert commit(ledger_chain, mempool, bus) == [tx_id(fine)]
    assert len(mempool) == 0


async def test_a_pending_body_re_signed_by_another_key_cannot_crowd_out_the_real_tx(ledger_chain):
    # finding 11: a copy of acme's body signed by mallory, gossiped in first, took the tx id,
    # so acme's own tx was refused as a duplicate
    mempool = make_mempool(ledger_chain)
    (real,) = registrations(ledger_chain, 1)
    stolen = sign_body_bytes(real.body, key("mallory"))
    (result,) = await mempool.add_from_peer([stolen], peer="node2")
    assert result.error is not None and result.error.code is ErrorCode.BAD_SIGNATURE
    assert await mempool.add(real) == tx_id(real)
    assert commit(ledger_chain, mempool) == [tx_id(real)]


async def test_a_block_takes_signers_in_turn_so_one_flood_cannot_hold_back_the_others(
    ledger_chain,
):
    mempool = make_mempool(ledger_chain, limits=MempoolLimits(signer_share_percent=100))
    flood = registrations(ledger_chain, 30)
    for tx in flood:
        await mempool.add(tx)
    (late,) = prefixes_by_root(ledger_chain, 1)
    await mempool.add(late)
    taken = mempool.take(5, 1 << 20)
    # the late signer's tx is in the next block, second after the flood's oldest, and the
    # flood's own txs keep their order
    assert taken == [flood[0], late, *flood[1:4]]
    assert mempool.take(3, 1 << 20) == [flood[0], late, flood[1]]


async def test_while_others_wait_a_flooding_signer_gives_a_block_at_most_its_contended_share(
    ledger_chain,
):
    # issue 10 attack 2b: one signer's flood made every block as large as the build budget
    # (5,000 txs), and the other signers' txs waited through those blocks (p99 0.1 s -> 10 s)
    mempool = make_mempool(ledger_chain, limits=MempoolLimits(signer_share_percent=100))
    big_value = "v" * 1000
    maker = acme(ledger_chain)
    flood = [
        maker.register(f"88/F-{i}", [value(1, "URL", big_value)], now_ms=NOW_MS) for i in range(80)
    ]
    for tx in flood:
        await mempool.add(tx)
    # alone, the flooding signer gets the whole budget
    assert mempool.take(10_000, 1 << 30) == flood
    (late,) = prefixes_by_root(ledger_chain, 1)
    await mempool.add(late)
    taken = mempool.take(10_000, 1 << 30)
    assert late in taken
    flood_taken = [tx for tx in taken if tx is not late]
    assert flood_taken == flood[: len(flood_taken)]  # the signer's own order is kept
    size = sum(tx.ByteSize() for tx in flood_taken)
    assert size <= CONTENDED_SIGNER_BLOCK_BYTES < size + flood[len(flood_taken)].ByteSize()


async def test_a_tx_larger_than_the_contended_share_still_gets_into_a_block(ledger_chain):
    mempool = make_mempool(ledger_chain)
    maker = acme(ledger_chain)
    items = [(f"B-{i}", [value(1, "URL", "u" * 1000)]) for i in range(40)]
    (batch,) = [maker.register_batch("88", items, now_ms=NOW_MS)]
    assert batch.ByteSize() > CONTENDED_SIGNER_BLOCK_BYTES
    await mempool.add(batch)
    (late,) = prefixes_by_root(ledger_chain, 1)
    await mempool.add(late)
    assert mempool.take(10_000, 1 << 30) == [batch, late]
