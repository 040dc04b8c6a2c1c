"""Elastic admission rates per signer (issue 10, attack 2b).

With no fees, what stops one signer from taking the whole chain is fairness. A signer alone
may submit as fast as the chain commits (a bulk load is not slowed when nobody else is
there); while other signers are active too, each signer's client txs are admitted at this
node at most CONTENDED_SIGNER_TXS_PER_S and CONTENDED_SIGNER_BYTES_PER_S (token buckets,
one second of burst, and always room for one tx of MAX_TX_BYTES). Every admitted tx costs
each validator a signature check and the rules before any block: a flood of valid txs from
one key once used the two shared cores whole (the attacker 5.3 CPU-s and node1 9.5 CPU-s in
12.8 s) and took the other clients' p99 from 0.1 s to 5-16 s.

A refused tx gets MEMPOOL_FULL, which clients already retry after a pause (`spark import`).
Gossip from other validators is not limited here: each validator limits its own clients.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    CONTENDED_SIGNER_BYTES_PER_S,
    CONTENDED_SIGNER_TXS_PER_S,
    MAX_TX_BYTES,
    SIGNER_ACTIVE_WINDOW_MS,
)

MAX_TRACKED_SIGNERS = 4096  # buckets kept, least recently charged forgotten first


@dataclass(slots=True)
class _Bucket:
    txs: float
    bytes: float
    at_ms: int


class SignerRates:
    """Every operation is O(1): a refused tx must not cost the node more than admitting
    one (claimed signers are charged before their signature is checked, so a stranger can
    make up as many as it likes)."""

    def __init__(
        self,
        txs_per_s: float = CONTENDED_SIGNER_TXS_PER_S,
        bytes_per_s: float = CONTENDED_SIGNER_BYTES_PER_S,
        active_window_ms: int = SIGNER_ACTIVE_WINDOW_MS,
    ) -> None:
        if txs_per_s <= 0 or bytes_per_s <= 0 or active_window_ms <= 0:
            raise ValueError("signer rates and the active window must be positive")
        self.txs_per_s = txs_per_s
        self.bytes_per_s = bytes_per_s
        self.burst_bytes = max(bytes_per_s, MAX_TX_BYTES)
        self.active_window_ms = active_window_ms
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()
        # the two signers most recently admitted (verified), newest first, with the time:
        # enough to tell whether any signer other than a given one is active
        self._recent: list[tuple[bytes, int]] = []

    def _bucket(self, signer: bytes, now_ms: int) -> _Bucket:
        bucket = self._buckets.get(signer)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_SIGNERS:
                self._buckets.popitem(last=False)
            bucket = _Bucket(self.txs_per_s, self.burst_bytes, now_ms)
            self._buckets[signer] = bucket
            return bucket
        self._buckets.move_to_end(signer)
        elapsed_s = max(0, now_ms - bucket.at_ms) / 1000
        bucket.txs = min(self.txs_per_s, bucket.txs + elapsed_s * self.txs_per_s)
        bucket.bytes = min(self.burst_bytes, bucket.bytes + elapsed_s * self.bytes_per_s)
        bucket.at_ms = now_ms
        return bucket

    def contended(self, signer: bytes, now_ms: int) -> bool:
        """Whether a signer other than `signer` had a tx admitted within the window."""
        active_since = now_ms - self.active_window_ms
        return any(other != signer and seen >= active_since for other, seen in self._recent)

    def check(self, signer: bytes, size: int, now_ms: int) -> None:
        """Charge a client tx of `signer` and `size` bytes to the signer's buckets, or raise
        MEMPOOL_FULL if that passes the signer's rate while other signers are active. The
        charge comes before the tx is verified, so that a batch of txs cannot all pass on
        one full bucket."""
        bucket = self._bucket(signer, now_ms)
        if (bucket.txs < 1 or bucket.bytes < size) and self.contended(signer, now_ms):
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"signer {signer.hex()} submits faster than its share while other signers "
                f"are active (at most {self.txs_per_s:g} txs and {self.bytes_per_s:g} "
                "bytes a second per signer at this node then); retry after a pause",
            )
        bucket.txs = max(0.0, bucket.txs - 1)
        bucket.bytes = max(0.0, bucket.bytes - size)

    def admitted(self, signer: bytes, now_ms: int) -> None:
        """A tx of `signer` was admitted (from a client or a peer): the signer is active."""
        others = [entry for entry in self._recent if entry[0] != signer]
        self._recent = [(signer, now_ms), *others[:1]]
