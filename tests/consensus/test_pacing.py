"""Pacing (consensus/pacing.py), which the node's driver and the simulator both run: when a
validator starts the next height after a commit."""

from __future__ import annotations

from sparkchain.consensus.pacing import START_NOW, Pacing


def test_after_the_block_interval_txs_start_the_next_height_at_once() -> None:
    pacing = Pacing(block_interval_ms=200, empty_block_interval_ms=10_000)
    assert pacing.committed() == 200
    assert not pacing.txs_arrived()  # within the block interval txs only batch up
    assert pacing.wake(now_ms=1200, last_block_time_ms=1000, has_txs=True) == START_NOW


def test_with_nothing_to_do_it_waits_for_a_tx_or_the_empty_block_interval() -> None:
    pacing = Pacing(block_interval_ms=200, empty_block_interval_ms=10_000)
    pacing.committed()
    assert pacing.wake(now_ms=1200, last_block_time_ms=1000, has_txs=False) == 9800
    assert pacing.txs_arrived()  # now the first tx starts the height
    assert pacing.wake(now_ms=11_000, last_block_time_ms=1000, has_txs=False) == START_NOW


def test_a_peer_at_the_next_height_starts_it_but_only_while_waiting() -> None:
    pacing = Pacing(block_interval_ms=200, empty_block_interval_ms=10_000)
    assert not pacing.peer_moved_on()  # running a height: nothing to start
    pacing.committed()
    assert pacing.peer_moved_on()
    pacing.started()
    assert not pacing.peer_moved_on() and not pacing.txs_arrived()
