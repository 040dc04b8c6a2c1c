"""The Application the consensus core agrees through: values are serialized blocks.

propose builds the next block from the mempool; validate re-executes a proposed block on the
ledger's overlay. The ledger keeps each executed PendingBlock (its one cache of executed
blocks), so the decided one is committed without executing it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction
from sparkchain.identifiers.limits import MIN_PROPOSAL_BYTES, PROPOSAL_BUILD_BUDGET_PERCENT
from sparkchain.ledger import blocks
from sparkchain.ledger.blocks import block_hash
from sparkchain.node.config import ConsensusConfig
from sparkchain.node.ledger import Ledger, PendingBlock
from sparkchain.node.logs import round_ms
from sparkchain.node.mempool import Mempool
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.consensus")


def block_hash_of(block_bytes: bytes, hash_fn: HashFunction) -> bytes:
    """The hash of the header bytes as carried in the block (types.proto)."""
    return block_hash(pb.Block.FromString(block_bytes).header, hash_fn)


class BlockApplication:
    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        proposer: bytes,
        config: ConsensusConfig,
        clock_ms: Callable[[], int],
    ) -> None:
        self._ledger = ledger
        self._mempool = mempool
        self._proposer = proposer
        self._config = config
        self._clock_ms = clock_ms
        self._hashes: dict[bytes, bytes] = {}  # value -> block hash, for this height's values
        # moving average of what executing a block cost here (built or validated); None
        # until a block large enough to measure went by
        self._build_ms_per_byte: float | None = None

    def propose(self, height: int, round: int) -> bytes:
        started = time.perf_counter()
        config = self._config
        txs = self._mempool.take(config.max_block_txs, config.max_block_bytes, self._byte_budget())
        time_ms = max(self._clock_ms(), self._ledger.last_block_time_ms + 1)
        built = self._ledger.build_block(txs, time_ms, self._proposer)
        self._learn_build_cost(sum(tx.ByteSize() for tx in txs), time.perf_counter() - started)
        if built.rejected:
            self._mempool.drop_rejected(built.rejected)
        self._hashes[built.block_bytes] = built.block_hash
        log.debug(
            "proposed",
            extra={
                "height": height,
                "round": round,
                "txs": len(built.block.txs),
                "ms": round_ms(started),
            },
        )
        return built.block_bytes

    def _byte_budget(self) -> int:
        """A block that takes longer to build than the propose timeout allows would make
        its peers time out and move to the next round: a lost round costs more than a
        smaller block. Execution cost follows tx bytes closely enough (a RegisterBatch of
        1,000 identifiers is ~54 KB) for bytes to be the measure.

        Until a block taught this node what execution costs here, it proposes
        MIN_PROPOSAL_BYTES: a node that started with a full mempool and no estimate once
        built 23 RegisterBatch txs in 3 s on the 2 shared cores, past every peer's propose
        timeout, and each of the four proposers did the same in turn (four lost rounds)."""
        most = self._config.max_block_bytes
        if self._build_ms_per_byte is None:
            return min(most, MIN_PROPOSAL_BYTES)
        budget_ms = self._config.propose_timeout_ms * PROPOSAL_BUILD_BUDGET_PERCENT / 100
        affordable = int(budget_ms / self._build_ms_per_byte)
        return min(most, max(MIN_PROPOSAL_BYTES, affordable))

    def _learn_build_cost(self, size: int, seconds: float) -> None:
        if size < MIN_PROPOSAL_BYTES // 4:
            return  # fixed costs dominate small blocks
        cost = seconds * 1000 / size
        previous = self._build_ms_per_byte
        self._build_ms_per_byte = cost if previous is None else 0.7 * previous + 0.3 * cost

    def validate(self, height: int, value: bytes) -> bool:
        if height != self._ledger.height + 1:
            return False
        started = time.perf_counter()
        known_hash = self._hashes.get(value)
        executed_before = known_hash is not None and self._ledger.has_executed(known_hash)
        try:
            pending = self._ledger.validate_block(value)
        except SparkError as error:
            if error.code is ErrorCode.STORAGE_CORRUPT:
                raise  # our own ledger is damaged: the driver fail-stops
            log.warning("invalid_block", extra={"height": height, "error": str(error)})
            return False
        except (OSError, MemoryError):
            raise  # this node cannot work (disk, memory): the driver fail-stops
        except Exception:
            # a proposer's block hit a bug in our rules: refusing it keeps us signing, while
            # letting it out would fail-stop every honest validator that sees the block
            log.exception("block_validation_failed", extra={"height": height})
            return False
        self._hashes[value] = pending.block_hash
        if not executed_before:
            # checking a peer's block costs what building it did: every validator learns
            # from every height, not only from the quarter it proposes
            self._learn_build_cost(len(value), time.perf_counter() - started)
        log.debug(
            "validated",
            extra={"height": height, "txs": len(pending.tx_ids), "ms": round_ms(started)},
        )
        return True

    def check_value(self, value: bytes) -> None:
        """Raise SparkError(INVALID_BLOCK) unless `value` decodes as a block (a peer's
        proposal, before the core sees it); the hash it finds serves `value_hash`."""
        self._hashes[value] = blocks.decode_block(value, self._ledger.hash_fn).block_hash

    def value_hash(self, value: bytes) -> bytes:
        known = self._hashes.get(value)
        if known is None:
            known = block_hash_of(value, self._ledger.hash_fn)
            self._hashes[value] = known
        return known

    def pending_for(self, value: bytes) -> PendingBlock:
        """The executed block of a decided value: from the ledger's cache of executed
        blocks, or executed now (a block decided by others' votes we never validated)."""
        return self._ledger.validate_block(value)

    def forget_below(self, height: int) -> None:
        """A new height starts: the values of earlier heights are done with."""
        self._hashes.clear()
