"""How much a proposer puts in a block (node/app.py): until a block taught the node what
execution costs on its machine it proposes MIN_PROPOSAL_BYTES, and every validator learns
from the blocks it validates, not only from those it builds."""

from __future__ import annotations

from pathlib import Path

from sparkchain.identifiers.limits import MAX_VALUE_DATA_BYTES, MIN_PROPOSAL_BYTES
from sparkchain.identifiers.tx import value
from sparkchain.node.app import BlockApplication
from sparkchain.node.config import ConsensusConfig
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.proto import types_pb2 as pb
from tests.helpers.ledger import LedgerChain, proposer

BATCH_ITEMS = 2  # two 16 KB values each: a RegisterBatch of ~66 KB


def big_batches(chain: LedgerChain, count: int) -> list[pb.SignedTx]:
    maker = chain.signer("acme", seed=5)
    values = [value(i, "DATA", "x" * MAX_VALUE_DATA_BYTES) for i in (1, 2)]
    return [
        maker.register_batch(
            "88",
            [(f"B{n}-{i}", values) for i in range(BATCH_ITEMS)],
            now_ms=chain.next_time_ms,
        )
        for n in range(count)
    ]


def mempool_of(chain: LedgerChain) -> Mempool:
    return Mempool(chain.ledger, MempoolLimits(), None, clock_ms=lambda: chain.next_time_ms)


def application(chain: LedgerChain, mempool: Mempool | None = None) -> BlockApplication:
    return BlockApplication(
        chain.ledger,
        mempool or mempool_of(chain),
        proposer(chain.genesis),
        ConsensusConfig(),
        lambda: chain.next_time_ms,
    )


async def test_a_node_that_never_executed_a_block_proposes_only_the_minimum(
    tmp_path: Path,
) -> None:
    # a node started with a full mempool once took 23 RegisterBatch txs into its first
    # block: 3 s to build on the shared 2 cores, past every peer's propose timeout
    chain = LedgerChain(tmp_path / "a")
    try:
        mempool = mempool_of(chain)
        txs = big_batches(chain, 10)
        for tx in txs:
            await mempool.add(tx)
        block = pb.Block.FromString(application(chain, mempool).propose(1, 0))
        size = sum(tx.ByteSize() for tx in block.txs)
        assert list(block.txs) == txs[: len(block.txs)]
        assert size <= MIN_PROPOSAL_BYTES < size + txs[len(block.txs)].ByteSize()
    finally:
        chain.close()


async def test_validating_a_peers_block_teaches_what_execution_costs(tmp_path: Path) -> None:
    builder, checker = LedgerChain(tmp_path / "a"), LedgerChain(tmp_path / "b")
    try:
        built = builder.build(big_batches(builder, 3))
        learner = application(checker)
        assert learner._build_ms_per_byte is None
        assert learner.validate(1, built.block_bytes)
        learned = learner._build_ms_per_byte
        assert learned is not None and learned > 0
        # validating the same block again executes nothing, so teaches nothing
        assert learner.validate(1, built.block_bytes)
        assert learner._build_ms_per_byte == learned
    finally:
        builder.close()
        checker.close()
