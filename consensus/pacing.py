"""Pacing: when a validator starts the next height after a commit (sans-I/O). The node's
driver and the simulator both run it; the caller owns the one timer it asks for.

After a commit the validator waits `block_interval_ms` (so blocks batch the txs that
arrive meanwhile), then starts the next height at once if there are txs to propose or
`empty_block_interval_ms` has passed since the last block (an empty block then keeps
`--max-age` bounds meaningful); otherwise it waits for the first tx, or for that interval.
A message of the next height from a peer starts it at once: that peer is already there,
and waiting would only delay the quorum.
"""

from __future__ import annotations

from dataclasses import dataclass

START_NOW = -1  # `wake`'s answer: start the next height now


@dataclass(slots=True)
class Pacing:
    block_interval_ms: int
    empty_block_interval_ms: int
    waiting: bool = False  # a height was committed and the next one not started yet
    ready_for_txs: bool = False  # the block interval passed: the first tx starts the height

    def committed(self) -> int:
        """A height was committed: ms until `wake` is to be called."""
        self.waiting, self.ready_for_txs = True, False
        return self.block_interval_ms

    def wake(self, now_ms: int, last_block_time_ms: int, has_txs: bool) -> int:
        """The timer fired: START_NOW, or ms until `wake` is to be called again."""
        if not self.waiting:
            return START_NOW
        idle_ms = now_ms - last_block_time_ms
        if has_txs or idle_ms >= self.empty_block_interval_ms:
            return START_NOW
        self.ready_for_txs = True
        return self.empty_block_interval_ms - idle_ms

    def txs_arrived(self) -> bool:
        """Txs were admitted: start the next height now?"""
        return self.waiting and self.ready_for_txs

    def peer_moved_on(self) -> bool:
        """A message of the next height arrived: start it now?"""
        return self.waiting

    def started(self) -> None:
        self.waiting = self.ready_for_txs = False
