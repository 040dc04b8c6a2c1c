"""Transactions admitted but not yet committed (DESIGN §7 "Mempool").

Admission, in order: cheap envelope checks and duplicates on the event loop; the
signature (once, in a thread pool: cryptography's Ed25519 releases the GIL, so other
requests keep being served meanwhile); then what can be checked against the latest state.
How much of that depends on where the tx comes from:
- from a local client, everything: the rules through `ledger.check_tx(...,
  verify_signature=False)`, which also rejects a tx id already in the ledger and a tx
  outside its validity window, so that the user hears of a mistake at once;
- from a peer, the expiry and whether it committed recently (the commit bus remembers),
  but not the rules: the node that took it from its client checked them, and running them
  here too would double the cost of every tx (the block runs them once more anyway). A tx
  that breaks a rule, or committed long ago, is dropped when a block is built
  (`BuiltBlock.rejected`, see `drop_rejected`), and anyone waiting for it hears the error
  then.
Admitted txs are kept in arrival order until a block commits them, a proposer rejects them,
or they expire.

Bounded by count and by bytes: a full mempool refuses new txs with MEMPOOL_FULL (the API
answers RESOURCE_EXHAUSTED) rather than evicting ones already accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    DEFAULT_MAX_BLOCK_BYTES,
    DEFAULT_MEMPOOL_MAX_BYTES,
    DEFAULT_MEMPOOL_MAX_TXS,
    MAX_TX_BYTES,
    MEMPOOL_VERIFY_CHUNK_TXS,
)
from sparkchain.identifiers.tx import check_signed_tx, tx_id
from sparkchain.ledger.rules import check_expiry
from sparkchain.proto import types_pb2 as pb

if TYPE_CHECKING:
    from sparkchain.node.events import CommitBus

log = logging.getLogger(__name__)


class AdmissionLedger(Protocol):
    """The part of node.ledger.Ledger the mempool needs."""

    @property
    def chain_id(self) -> str: ...

    def check_tx(
        self, signed: pb.SignedTx, now_ms: int, verify_signature: bool = True
    ) -> pb.TxBody: ...

    def mark_signatures_verified(self, txs: Iterable[pb.SignedTx]) -> None: ...


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_txs: int = DEFAULT_MEMPOOL_MAX_TXS
    max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES
    # the node's consensus.max_block_bytes: a tx larger than a block could never leave
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES


class Admission(NamedTuple):
    """The outcome for one tx of a batch: its id and, if refused, why."""

    tx_id: bytes
    error: SparkError | None


@dataclass(slots=True)
class _Entry:
    signed: pb.SignedTx
    size: int
    expires_at_ms: int


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
    ) -> None:
        """`verify_executor` None verifies on the calling thread (tests, tiny tools).
        With a `bus`, txs dropped as rejected or expired fail their `wait_for_tx` waiters
        at once instead of at their timeout."""
        self._ledger = ledger
        self.limits = limits
        self._executor = verify_executor
        self._bus = bus
        self._clock_ms = clock_ms
        self._entries: dict[bytes, _Entry] = {}  # insertion order = arrival order
        self._verifying: set[bytes] = set()  # ids between the duplicate check and insertion
        self._verifications: set[asyncio.Future[list[list[pb.TxBody | SparkError]]]] = set()
        self._bytes = 0
        self.on_admitted: list[AdmittedHook] = []

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
        `origin` None is a local client (every rule checked), else the peer that sent it."""
        ids = [tx_id(signed) for signed in txs]
        results: list[Admission | None] = [None] * len(txs)
        to_verify: list[int] = []
        claimed: set[bytes] = set()
        for i, (signed, the_id) in enumerate(zip(txs, ids, strict=True)):
            try:
                self._precheck(signed, the_id, claimed)
            except SparkError as error:
                results[i] = Admission(the_id, error)
                continue
            claimed.add(the_id)
            to_verify.append(i)
        self._verifying |= claimed
        try:
            bodies = await self._verify([txs[i] for i in to_verify])
        finally:
            self._verifying -= claimed
        now_ms = self._clock_ms()
        admitted: list[pb.SignedTx] = []
        for i, body in zip(to_verify, bodies, strict=True):
            signed, the_id = txs[i], ids[i]
            try:
                if isinstance(body, SparkError):
                    raise body
                self._admit(signed, the_id, body, now_ms, local=origin is None)
            except SparkError as error:
                results[i] = Admission(the_id, error)
                continue
            admitted.append(signed)
            results[i] = Admission(the_id, None)
        if admitted:
            # blocks holding these txs need not verify them again (DESIGN §7: "once")
            self._ledger.mark_signatures_verified(admitted)
            self._run_hooks(admitted, origin)
        return [r for r in results if r is not None]

    def _precheck(self, signed: pb.SignedTx, the_id: bytes, claimed: set[bytes]) -> None:
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
        self._check_room(size)

    def _check_room(self, size: int) -> None:
        if len(self._entries) >= self.limits.max_txs:
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"mempool is full ({len(self._entries)} txs, limit {self.limits.max_txs}); "
                "retry after the next blocks commit",
            )
        if self._bytes + size > self.limits.max_bytes:
            raise SparkError(
                ErrorCode.MEMPOOL_FULL,
                f"mempool is full ({self._bytes} bytes held, this tx needs {size} more, "
                f"limit {self.limits.max_bytes}); retry after the next blocks commit",
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

    def _admit(
        self, signed: pb.SignedTx, the_id: bytes, body: pb.TxBody, now_ms: int, *, local: bool
    ) -> None:
        # the state may have moved while the signature was checked: re-check what can change
        if the_id in self._entries:
            raise SparkError(
                ErrorCode.DUPLICATE_TX, f"tx {the_id.hex()} is already waiting in the mempool"
            )
        size = signed.ByteSize()
        self._check_room(size)
        if local:
            body = self._ledger.check_tx(signed, now_ms, verify_signature=False)
        else:
            self._check_from_peer(body, now_ms)
        self._entries[the_id] = _Entry(signed, size, body.expires_at_ms)
        self._bytes += size

    def _check_from_peer(self, body: pb.TxBody, now_ms: int) -> None:
        """What a gossiped tx is checked for besides its envelope, signature and duplicates
        (see the module notes). A tx committed longer ago than the commit bus remembers is
        not looked up in the ledger (a read per tx); the block refuses it if it comes."""
        check_expiry(body.expires_at_ms, now_ms)

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
        """The oldest txs, in arrival order, within `budget_bytes` (`max_bytes` if None);
        they stay until removed. The oldest tx is taken even when it alone exceeds the
        budget (never `max_bytes`): a block may pass its budget by that one tx, but a tx
        larger than any budget would otherwise wait forever while empty blocks go by."""
        budget = max_bytes if budget_bytes is None else min(budget_bytes, max_bytes)
        out: list[pb.SignedTx] = []
        used = 0
        for entry in self._entries.values():
            if len(out) >= max_txs:
                break
            if entry.size > max_bytes:
                continue  # can never fit a block: it must not hold back the ones behind it
            if out and used + entry.size > budget:
                break
            out.append(entry.signed)
            used += entry.size
        return out

    def remove(self, tx_ids: Iterable[bytes]) -> int:
        """Forget txs (committed ones: the bus already told their waiters). Returns how many."""
        removed = 0
        for the_id in tx_ids:
            entry = self._entries.pop(the_id, None)
            if entry is not None:
                self._bytes -= entry.size
                removed += 1
        return removed

    def drop_rejected(self, rejected: Iterable[tuple[pb.SignedTx, SparkError]]) -> int:
        """Forget txs a proposer could not include (BuiltBlock.rejected) and tell waiters."""
        removed = 0
        for signed, error in rejected:
            the_id = tx_id(signed)
            removed += self.remove([the_id])
            if self._bus is not None:
                self._bus.publish_rejected(the_id, error)
        return removed

    def drop_expired(self, now_ms: int) -> int:
        expired = [i for i, e in self._entries.items() if e.expires_at_ms < now_ms]
        for the_id in expired:
            self.remove([the_id])
            if self._bus is not None:
                self._bus.publish_rejected(
                    the_id, SparkError(ErrorCode.EXPIRED, "tx expired before a block took it")
                )
        return len(expired)
