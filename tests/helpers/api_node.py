"""An in-process API node for tests: a real Ledger on disk, the Mempool, the CommitBus and
the public gRPC services on a grpc.aio server at 127.0.0.1:<free port>.

Consensus is replaced by `commit_pending()`: build a block from what the mempool holds at
the wall-clock time, commit it with a real quorum certificate, tell mempool and bus. With
`auto_commit` a background task does that whenever txs are waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sparkchain.identifiers.limits import DEFAULT_API_MAX_CONNECTIONS
from sparkchain.ledger.genesis import Genesis
from sparkchain.node.api import add_services
from sparkchain.node.events import CommitBus
from sparkchain.node.forward import SubmitForwarder
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.node.mempool import wall_clock_ms as wall_ms
from sparkchain.node.runtime import new_api_server
from sparkchain.proto import api_pb2, types_pb2
from tests.helpers.chain import make_test_genesis
from tests.helpers.ledger import LedgerChain, certificate, proposer

MAX_BLOCK_TXS = 5000
MAX_BLOCK_BYTES = 16 * 1024 * 1024


class FakeStatus:
    """What the runtime would report; fields are plain attributes tests may change."""

    def __init__(self, role: str = "validator", validator: bytes = b"") -> None:
        self.role_name = role
        self.validator = validator
        self.peer_list: list[api_pb2.PeerInfo] = [
            api_pb2.PeerInfo(name="node2", address="127.0.0.1:7201", connected=True, height=3)
        ]
        self.is_syncing = False

    def role(self) -> str:
        return self.role_name

    def node_name(self) -> str:
        return "node1"

    def peers(self) -> Sequence[api_pb2.PeerInfo]:
        return self.peer_list

    def syncing(self) -> bool:
        return self.is_syncing

    def validator_key(self) -> bytes:
        return self.validator

    def http_listen(self) -> str:
        return ""


class ApiNode:
    def __init__(
        self,
        path: Path,
        genesis: Genesis | None = None,
        limits: MempoolLimits | None = None,
        bus: CommitBus | None = None,
        role: str = "validator",
        forwarder: SubmitForwarder | None = None,
        keep_heights: int = 0,
    ) -> None:
        self.genesis = genesis or make_test_genesis()
        self.chain = LedgerChain(path, self.genesis, keep_heights=keep_heights)
        self.ledger = self.chain.ledger
        self.bus = bus or CommitBus()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")
        self.mempool = Mempool(
            self.ledger, limits or MempoolLimits(), self.executor, bus=self.bus, clock_ms=wall_ms
        )
        self.status = FakeStatus(role, validator=proposer(self.genesis))
        # the options the node runs its API with: message sizes, calls and connections
        self.server = new_api_server(DEFAULT_API_MAX_CONNECTIONS)
        self.health = add_services(
            self.server, self.ledger, self.mempool, self.bus, self.status, forwarder=forwarder
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"
        self._committer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.mempool.on_admitted.append(lambda txs, origin: self._wake.set())

    async def start(self, auto_commit: bool = True) -> ApiNode:
        await self.server.start()
        if auto_commit:
            self.resume()
        return self

    def resume(self) -> None:
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_loop())

    async def pause(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
            self._committer = None

    async def stop(self) -> None:
        await self.pause()
        await self.server.stop(grace=None)
        self.executor.shutdown(wait=True)
        self.chain.close()

    def commit_pending(self) -> int | None:
        """Commit one block of what the mempool holds; its height, or None if empty."""
        txs = self.mempool.take(MAX_BLOCK_TXS, MAX_BLOCK_BYTES)
        if not txs:
            return None
        built = self.ledger.build_block(txs, wall_ms(), proposer(self.genesis))
        self.mempool.drop_rejected(built.rejected)
        height = built.pending.height
        self.ledger.commit_block(built.pending, certificate(self.genesis, height, built.block_hash))
        tx_ids = list(built.pending.tx_ids)
        self.mempool.remove(tx_ids)
        self.bus.publish_block(height, tx_ids, self.ledger.changes_at(height))
        return height

    def commit_now(self, txs: Sequence[types_pb2.SignedTx]) -> int:
        """Commit these txs directly (bypassing the mempool); returns the height."""
        built = self.ledger.build_block(list(txs), wall_ms(), proposer(self.genesis))
        assert not built.rejected, built.rejected
        height = built.pending.height
        self.ledger.commit_block(built.pending, certificate(self.genesis, height, built.block_hash))
        self.bus.publish_block(height, list(built.pending.tx_ids), self.ledger.changes_at(height))
        return height

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.002)  # let a burst of submissions gather into one block
            while self.commit_pending() is not None:
                await asyncio.sleep(0)
