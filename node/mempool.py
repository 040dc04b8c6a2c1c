"""Transactions admitted but not yet committed (DESIGN §7 "Mempool", §11).

Admission, in order: cheap envelope checks, duplicates and room on the event loop; the
signature (once, in a thread pool: cryptography's Ed25519 releases the GIL, so other
requests keep being served meanwhile); then the rules against the latest state, through
`ledger.check_tx(..., verify_signature=False)`, which also rejects a tx id already in the
ledger and a tx outside its validity window. That holds for a local client's tx (so that
the user hears of a mistake at once) and for a peer's alike: a gossiped tx that breaks a
rule would otherwise take room until a block dropped it, and room is what an attacker
wants (issue 10). The rules run on the event loop, a chunk of txs at a time with a yield
between chunks, so a large gossip batch does not stall consensus.
Admitted txs are kept in arrival order until a block commits them, a proposer rejects them,
or they expire.

Bounded by count and by bytes, in total and per signer (`MEMPOOL_SIGNER_SHARE_PERCENT`:
with no fees, fairness between signers is what decides who waits). A full mempool first
drops the txs that expired, then makes room for a signer that holds less than another by
evicting that other's newest txs (their waiters hear MEMPOOL_FULL); failing both it refuses
the new tx with MEMPOOL_FULL (the API answers RESOURCE_EXHAUSTED) naming the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.identifiers.limits import (
    CONTENDED_SIGNER_BLOCK_BYTES,
    DEFAULT_MAX_BLOCK_BYTES,
    DEFAULT_MEMPOOL_MAX_BYTES,
    DEFAULT_MEMPOOL_MAX_TXS,
    MAX_TX_BYTES,
    MEMPOOL_SIGNER_SHARE_PERCENT,
    MEMPOOL_VERIFY_CHUNK_TXS,
)
from sparkchain.identifiers.tx import check_signed_tx, tx_id
from sparkchain.node.signer_rates import SignerRates
from sparkchain.proto import types_pb2 as pb

if TYPE_CHECKING:
    from sparkchain.node.events import CommitBus

log = logging.getLogger(__name__)


class AdmissionLedger(Protocol):
    """The part of node.ledger.Ledger the mempool needs."""

    @property
    def chain_id(self) -> str: ...

    def check_tx(
        self,
        signed: pb.SignedTx,
        now_ms: int,
        verify_signature: bool = True,
        *,
        the_tx_id: bytes | None = None,
        checked_body: pb.TxBody | None = None,
    ) -> pb.TxBody: ...

    def mark_signatures_verified(
        self, txs: Iterable[pb.SignedTx], tx_ids: Iterable[bytes] | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_txs: int = DEFAULT_MEMPOOL_MAX_TXS
    max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES
    # the node's consensus.max_block_bytes: a tx larger than a block could never leave
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES
    signer_share_percent: int = MEMPOOL_SIGNER_SHARE_PERCENT

    @property
    def signer_max_txs(self) -> int:
        return max(1, self.max_txs * self.signer_share_percent // 100)

    @property
    def signer_max_bytes(self) -> int:
        return self.max_bytes * self.signer_share_percent // 100


class Admission(NamedTuple):
    """The outcome for one tx of a batch: its id and, if refused, why."""

    tx_id: bytes
    error: SparkError | None


@dataclass(slots=True)
class _Entry:
    signed: pb.SignedTx
    size: int
    expires_at_ms: int
    signer: bytes


@dataclass(slots=True)
class _SignerShare:
    """What one signer holds: its tx ids in arrival order, and their bytes."""

    tx_ids: dict[bytes, None]
    size: int = 0


# Called with the txs just admitted and where they came from (None: a local client, else
# the peer's name) so that gossip can batch them and avoid echoing them back.
AdmittedHook = Callable[[list[pb.SignedTx], str | None], None]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _verify_chunk(chain_id: str, chunk: Sequence[pb.SignedTx]) -> list[pb.TxBody | SparkError]:
    """Runs in the verify executor: envelope + signature + chain id of each tx."""
    out: list[pb.TxBody | SparkError] = []
    for signed in chunk:
        try:
            out.append(check_signed_tx(signed, chain_id))
        except SparkError as error:
            out.append(error)
    return out


class Mempool:
    def __init__(
        self,
        ledger: AdmissionLedger,
        limits: MempoolLimits,
        verify_executor: Executor | None,
        *,
        bus: CommitBus | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        takes_client_txs: bool = True,
        hash_fn: HashFunction = sha256,
        signer_rates: SignerRates | None = None,
    ) -> None:
        """`verify_executor` None verifies on the calling thread (tests, tiny tools).
        With a `bus`, txs dropped as rejected, expired or evicted fail their `wait_for_tx`
        waiters at once instead of at their timeout. `takes_client_txs` False (observers):
        a local client's tx is refused, since no validator takes txs from an observer."""
        self._ledger = ledger
        self._hash = hash_fn  # the chain's hash: tx ids as the ledger computes them
        self.limits = limits
        self._executor = verify_executor
        self._bus = bus
        self._clock_ms = clock_ms
        self._entries: dict[bytes, _Entry] = {}  # insertion order = arrival order
        self._verifying: set[bytes] = set()  # ids between the duplicate check and insertion
        self._verifications: set[asyncio.Future[list[list[pb.TxBody | SparkError]]]] = set()
        self._bytes = 0
        self._by_signer: dict[bytes, _SignerShare] = {}
        # no entry expires before this (it may be earlier than the true first expiry, after
        # removals): a full mempool looks for expired txs without a scan per refusal
        self._first_expiry_ms = 0
        self._takes_client_txs = takes_client_txs
        self.signer_rates = signer_rates or SignerRates()
        self.on_admitted: list[AdmittedHook] = []
        # called with the bound's name each time one refuses or evicts a tx (node/metrics.py)
        self.on_limit_hit: Callable[[str], None] = lambda _limit: None

    # ---- size ----

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, the_tx_id: object) -> bool:
        return the_tx_id in self._entries

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, the_tx_id: bytes) -> pb.SignedTx | None:
        entry = self._entries.get(the_tx_id)
        return entry.signed if entry is not None else None

    # ---- admission ----

    async def add(self, signed: pb.SignedTx) -> bytes:
        """Admit one tx from a local client; returns its id or raises SparkError."""
        (result,) = await self.add_many([signed], origin=None)
        if result.error is not None:
            raise result.error
        return result.tx_id

    async def add_from_peer(self, txs: Sequence[pb.SignedTx], peer: str) -> list[Admission]:
        """Admit a gossiped batch. Txs we already hold are not errors worth logging."""
        results = await self.add_many(txs, origin=peer)
        refused = [r for r in results if r.error and r.error.code is not ErrorCode.DUPLICATE_TX]
        if refused:
            log.debug("refused %d of %d txs from %s: %s", len(refused), len(txs), peer, refused[0])
        return results

    async def add_many(
        self, txs: Sequence[pb.SignedTx], origin: str | None = None
    ) -> list[Admission]:
        """Admit a batch: one result per tx, in order. Hooks fire once for the batch.
        `origin` None is a local client, else the peer that sent it."""
        ids = [tx_id(signed, self._hash) for signed in txs]
        if origin is None and not self._takes_client_txs:
            refusal = SparkError(
                ErrorCode.UNAVAILABLE,
                "this node is an observer and takes no txs (validators take txs only from "
                "their clients and each other): submit to a validator's API",
            )
            return [Admission(the_id, refusal) for the_id in ids]
        results: list[Admission | None] = [None] * len(txs)
        to_verify: list[int] = []
        claimed: set[bytes] = set()
        for i, (signed, the_id) in enumerate(zip(txs, ids, strict=True)):
            try:
                signer = self._precheck(signed, the_id, claimed)
                if origin is None:
                    self.signer_rates.check(signer, signed.ByteSize(), self._clock_ms())
            except SparkError as error:
                results[i] = Admission(the_id, error)
                continue
            claimed.add(the_id)
            to_verify.append(i)
        self._verifying |= claimed
        admitted: list[pb.SignedTx] = []
        admitted_ids: list[bytes] = []
        try:
            bodies = await self._verify([txs[i] for i in to_verify])
            for done, (i, body) in enumerate(zip(to_verify, bodies, strict=True)):
                if done and done % MEMPOOL_VERIFY_CHUNK_TXS == 0:
                    await asyncio.sleep(0)  # the rules run on the loop: let others in
                signed, the_id = txs[i], ids[i]
                try:
                    if isinstance(body, SparkError):
                        raise body
                    self._admit(signed, the_id, body, self._clock_ms())
                except SparkError as error:
                    results[i] = Admission(the_id, error)
                    continue
                admitted.append(signed)
                admitted_ids.append(the_id)
                results[i] = Admission(the_id, None)
        finally:
            self._verifying -= claimed
        if admitted:
            # blocks holding these txs need not verify them again (DESIGN §7: "once")
            self._ledger.mark_signatures_verified(admitted, admitted_ids)
            self._run_hooks(admitted, origin)
        return [r for r in results if r is not None]

    def _precheck(self, signed: pb.SignedTx, the_id: bytes, claimed: set[bytes]) -> bytes:
        """Refuse what can be refused before the signature check; returns the signer the
        body names (not verified yet: b"" when the body does not parse)."""
        size = signed.ByteSize()
        if len(signed.body) > MAX_TX_BYTES:
            raise SparkError(
                ErrorCode.TOO_LARGE,
                f"tx body is {len(signed.body)} bytes, at most {MAX_TX_BYTES} allowed",
            )
        if size > self.limits.max_block_bytes:
            # admitted, it would wait in every mempool until it expired, never proposed
            raise SparkError(
                ErrorCode.TOO_LARGE,
                f"tx is {size} bytes, larger than a block of this node "
                f"(consensus.max_block_bytes = {self.limits.max_block_bytes})",
            )
        if the_id in self._entries or the_id in self._verifying or the_id in claimed:
            raise SparkError(
                ErrorCode.DUPLICATE_TX, f"tx {the_id.hex()} is already waiting in the mempool"
            )
        if self._bus is not None and self._bus.committed(the_id) is not None:
            # gossip that arrives after the block: no need to check its signature again
            raise SparkError(ErrorCode.DUPLICATE_TX, f"tx {the_id.hex()} is already in the ledger")
        # the signer is not verified yet: evict nothing for it, only refuse what cannot fit.
        # A plain parse finds it (the canonical check comes with the signature, in the pool);
        # a body that does not parse is refused there.
        try:
            signer = bytes(pb.TxBody.FromString(signed.body).signer)
        except DecodeError:
            signer = b""
        self._check_room(size, signer, evict=False)
        return signer

    def _check_room(self, size: int, signer: bytes, *, evict: bool) -> None:
        """Raise MEMPOOL_FULL unless a tx of `size` bytes from `signer` fits: after the
        expired txs go, and (with `evict`) other signers' newest txs that a fair share
        does not cover. Without `evict`, only what eviction could not fix is refused."""
        limits = self.limits
        held_txs, held_bytes = self._held(signer)
        over_share = (
            held_txs >= limits.signer_max_txs or held_bytes + size > limits.signer_max_bytes
        )
        if over_share or self._is_full(size):
            self.drop_expired(self._clock_ms())
            held_txs, held_bytes = self._held(signer)
        if limits.signer_share_percent < 100:  # else the totals below say it better
            self._check_share(signer, size, held_txs, held_bytes)
        while self._is_full(size):
            heavier = self._heavier_signer(size, held_txs, held_bytes)
            if heavier is None:
                break
            if not evict:
                return  # room can be made, once the tx proved its signer and its rules
            self._evict_newest(heavier)
        if len(self._entries) >= limits.max_txs:
            self.on_limit_hit("mempool.max_txs")
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"mempool is full ({len(self._entries)} txs, limit {limits.max_txs} of "
                "mempool.max_txs); retry after the next blocks commit",
            )
        if self._bytes + size > limits.max_bytes:
            self.on_limit_hit("mempool.max_bytes")
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"mempool is full ({self._bytes} bytes held, this tx needs {size} more, "
                f"limit {limits.max_bytes} of mempool.max_bytes); retry after the next "
                "blocks commit",
            )

    def _check_share(self, signer: bytes, size: int, held_txs: int, held_bytes: int) -> None:
        limits = self.limits
        if held_txs >= limits.signer_max_txs:
            self.on_limit_hit("MEMPOOL_SIGNER_SHARE_PERCENT")
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"signer {signer.hex()} holds {held_txs} txs, its share of this mempool "
                f"(MEMPOOL_SIGNER_SHARE_PERCENT: {limits.signer_share_percent}% of "
                f"mempool.max_txs = {limits.signer_max_txs}); retry after the next blocks commit",
            )
        if held_bytes + size > limits.signer_max_bytes:
            self.on_limit_hit("MEMPOOL_SIGNER_SHARE_PERCENT")
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"signer {signer.hex()} holds {held_bytes} bytes and this tx needs {size} "
                f"more, past its share of this mempool (MEMPOOL_SIGNER_SHARE_PERCENT: "
                f"{limits.signer_share_percent}% of "
                f"mempool.max_bytes = {limits.signer_max_bytes}); retry after the next "
                "blocks commit",
            )

    def _is_full(self, size: int) -> bool:
        limits = self.limits
        return len(self._entries) >= limits.max_txs or self._bytes + size > limits.max_bytes

    def _held(self, signer: bytes) -> tuple[int, int]:
        """(txs, bytes) that `signer` holds here."""
        share = self._by_signer.get(signer)
        return (len(share.tx_ids), share.size) if share is not None else (0, 0)

    def _heavier_signer(self, size: int, held_txs: int, held_bytes: int) -> bytes | None:
        """The signer holding the most (txs if the count is full, else bytes), if it holds
        more than the newcomer's signer would with its tx: eviction then evens out shares
        and can never go back and forth."""
        if not self._by_signer:
            return None
        if len(self._entries) >= self.limits.max_txs:
            signer, share = max(self._by_signer.items(), key=lambda item: len(item[1].tx_ids))
            return signer if len(share.tx_ids) > held_txs + 1 else None
        signer, share = max(self._by_signer.items(), key=lambda item: item[1].size)
        return signer if share.size > held_bytes + size else None

    def _evict_newest(self, signer: bytes) -> None:
        the_id = next(reversed(self._by_signer[signer].tx_ids))
        self.on_limit_hit("mempool eviction")
        self.remove([the_id])
        if self._bus is not None:
            self._bus.publish_rejected(
                the_id,
                SparkError(
                    ErrorCode.MEMPOOL_FULL,
                    "evicted from a full mempool to make room for a signer holding less "
                    "(MEMPOOL_SIGNER_SHARE_PERCENT); submit it again later",
                ),
            )

    async def _verify(self, txs: Sequence[pb.SignedTx]) -> list[pb.TxBody | SparkError]:
        chain_id = self._ledger.chain_id
        if not txs:
            return []
        if self._executor is None:
            return _verify_chunk(chain_id, txs)
        loop = asyncio.get_running_loop()
        step = MEMPOOL_VERIFY_CHUNK_TXS
        chunks = [txs[i : i + step] for i in range(0, len(txs), step)]
        verification = asyncio.gather(
            *(loop.run_in_executor(self._executor, _verify_chunk, chain_id, c) for c in chunks)
        )
        self._verifications.add(verification)
        verification.add_done_callback(self._verifications.discard)
        parts = await verification
        return [body for part in parts for body in part]

    def verifications_in_flight(self) -> list[asyncio.Future[Any]]:
        """The signature checks running in the pool now. A block validated before they end
        would check the same signatures again, on the event loop: the driver lets a
        proposal wait for them (a signature is checked once per node, DESIGN §7)."""
        return list(self._verifications)

    def _admit(self, signed: pb.SignedTx, the_id: bytes, checked: pb.TxBody, now_ms: int) -> None:
        # the state may have moved while the signature was checked: re-check what can change
        if the_id in self._entries:
            raise SparkError(
                ErrorCode.DUPLICATE_TX, f"tx {the_id.hex()} is already waiting in the mempool"
            )
        # `checked` is the verify pool's decoding: the rules run on it, and so does the block
        body = self._ledger.check_tx(
            signed, now_ms, verify_signature=False, the_tx_id=the_id, checked_body=checked
        )
        size = signed.ByteSize()
        signer = bytes(body.signer)
        self._check_room(size, signer, evict=True)
        self._entries[the_id] = _Entry(signed, size, body.expires_at_ms, signer)
        self._first_expiry_ms = min(self._first_expiry_ms, body.expires_at_ms)
        self._bytes += size
        share = self._by_signer.setdefault(signer, _SignerShare({}))
        share.tx_ids[the_id] = None
        share.size += size
        self.signer_rates.admitted(signer, now_ms)

    def _run_hooks(self, admitted: list[pb.SignedTx], origin: str | None) -> None:
        for hook in self.on_admitted:
            try:
                hook(admitted, origin)
            except Exception:  # a gossip failure must not fail the client's submit
                log.exception("on_admitted hook %r failed", hook)

    # ---- block building and clean-up ----

    def take(
        self, max_txs: int, max_bytes: int, budget_bytes: int | None = None
    ) -> list[pb.SignedTx]:
        """Txs for a block, fairly across signers: one from each signer in turn (signers in
        the order they arrived, each signer's txs in its own arrival order), within
        `budget_bytes` (`max_bytes` if None); they stay until removed. One signer's flood
        therefore delays others' txs by at most one of its own per turn, not by all of it.
        While several signers wait, each gives at most CONTENDED_SIGNER_BLOCK_BYTES (and at
        least one tx) to the block: blocks stay small, so that a flood cannot make every
        other signer's tx wait through blocks as large as the budget allows; a signer alone
        gets the whole budget.
        The first tx is taken even when it alone exceeds the budget (never `max_bytes`): a
        block may pass its budget by that one tx, but a tx larger than any budget would
        otherwise wait forever while empty blocks go by.

        Reordering across signers is safe: every tx was admitted against the committed
        state, so none needs another pending tx applied first; a signer's own order (which
        may matter to it) is kept."""
        budget = max_bytes if budget_bytes is None else min(budget_bytes, max_bytes)
        out: list[pb.SignedTx] = []
        used = 0
        entries = self._entries
        queues = [(iter(share.tx_ids), [0]) for share in self._by_signer.values() if share.tx_ids]
        signer_cap = CONTENDED_SIGNER_BLOCK_BYTES if len(queues) > 1 else budget
        while queues and len(out) < max_txs:
            still: list[tuple[Iterator[bytes], list[int]]] = []
            for queue, given in queues:
                the_id = next(queue, None)
                if the_id is None:
                    continue  # this signer has nothing more
                entry = entries[the_id]
                if entry.size > max_bytes:
                    still.append((queue, given))
                    continue  # can never fit a block: it must not hold back the ones behind it
                if given[0] and given[0] + entry.size > signer_cap:
                    continue  # this signer gave its share of this block
                if out and used + entry.size > budget:
                    return out
                out.append(entry.signed)
                used += entry.size
                given[0] += entry.size
                still.append((queue, given))
                if len(out) >= max_txs:
                    return out
            queues = still
        return out

    def remove(self, tx_ids: Iterable[bytes]) -> int:
        """Forget txs (committed ones: the bus already told their waiters). Returns how many."""
        removed = 0
        for the_id in tx_ids:
            entry = self._entries.pop(the_id, None)
            if entry is not None:
                self._bytes -= entry.size
                share = self._by_signer[entry.signer]
                del share.tx_ids[the_id]
                share.size -= entry.size
                if not share.tx_ids:
                    del self._by_signer[entry.signer]
                removed += 1
        return removed

    def drop_rejected(self, rejected: Iterable[tuple[pb.SignedTx, SparkError]]) -> int:
        """Forget txs a proposer could not include (BuiltBlock.rejected) and tell waiters."""
        removed = 0
        for signed, error in rejected:
            the_id = tx_id(signed, self._hash)
            removed += self.remove([the_id])
            if self._bus is not None:
                self._bus.publish_rejected(the_id, error)
        return removed

    def drop_expired(self, now_ms: int) -> int:
        if now_ms <= self._first_expiry_ms:
            return 0
        expired = [i for i, e in self._entries.items() if e.expires_at_ms < now_ms]
        for the_id in expired:
            self.remove([the_id])
            if self._bus is not None:
                self._bus.publish_rejected(
                    the_id, SparkError(ErrorCode.EXPIRED, "tx expired before a block took it")
                )
        self._first_expiry_ms = min(
            (e.expires_at_ms for e in self._entries.values()), default=now_ms
        )
        return len(expired)
