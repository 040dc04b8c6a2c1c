"""Block sync (DESIGN §7): a node that is behind fetches committed blocks with their
certificates from peers, in ranges, and commits each one only after

1. the certificate is for the next height and for this block's hash,
2. a quorum of the validators of that height signed it (consensus.verify_certificate; the
   set as our chain, one height behind, scheduled it: DESIGN §12), and
3. re-executing the block on our state gives the header's tx root and state root
   (ledger.validate_block).

Validators run it when a peer reports a height above ours or consensus hears from a future
height; observers follow the chain this way all the time. The serving side streams blocks
from the ledger (Peer.GetBlocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    MAX_GET_BLOCKS_RANGE,
    SYNC_LAG_GRACE_MS,
    SYNC_POLL_INTERVAL_MS,
    SYNC_RANGE_BLOCKS,
)
from sparkchain.ledger.blocks import block_hash
from sparkchain.node.commit import Committer
from sparkchain.node.ledger import Ledger
from sparkchain.node.peers import PeerNetwork, SyncPeer
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.sync")

CertificateCheck = Callable[[str, Sequence[bytes], pb.CommitCertificate], None]
GET_BLOCKS_TIMEOUT_S = 60.0


def default_certificate_check() -> CertificateCheck:
    from sparkchain.consensus.certificate import verify_certificate
    from sparkchain.consensus.wire import certificate_from_proto

    def check(chain_id: str, validators: Sequence[bytes], cert: pb.CommitCertificate) -> None:
        verify_certificate(chain_id, validators, certificate_from_proto(cert))

    return check


class BlockSync:
    def __init__(
        self,
        ledger: Ledger,
        committer: Committer,
        network: PeerNetwork,
        *,
        on_caught_up: Callable[[int], None] = lambda _height: None,
        verify_certificate: CertificateCheck | None = None,
        follow: bool = False,
    ) -> None:
        """`follow`: an observer, which keeps polling peers for new heights."""
        self._ledger = ledger
        self._committer = committer
        self._network = network
        self._on_caught_up = on_caught_up
        self._verify = verify_certificate or default_certificate_check()
        self._follow = follow
        self._target = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.syncing = False

    # ---- control ----

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def notice_height(self, height: int) -> None:
        """A peer has committed `height` (its status, or a consensus message of height+1)."""
        if height > self._ledger.height and height > self._target:
            self._target = height
            self._wake.set()

    # ---- fetching ----

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SYNC_POLL_INTERVAL_MS / 1000)
            self._wake.clear()
            self._target = max(self._target, self._network.max_peer_height())
            if self._target <= self._ledger.height:
                continue
            if not self._follow and self._target == self._ledger.height + 1:
                # one block behind is how a validator often is while the last precommits
                # reach it; only a lag that lasts is worth fetching blocks for
                await asyncio.sleep(SYNC_LAG_GRACE_MS / 1000)
                if self._target <= self._ledger.height:
                    continue
            start_height = self._ledger.height
            self.syncing = True
            try:
                while self._target > self._ledger.height:
                    if not await self._fetch_from_some_peer():
                        break  # nobody served a block; the next poll tries again
            finally:
                self.syncing = False
            if self._ledger.height > start_height:
                log.info(
                    "synced",
                    extra={"from_height": start_height, "height": self._ledger.height},
                )
                self._on_caught_up(self._ledger.height)

    async def _fetch_from_some_peer(self) -> bool:
        for peer in self._network.sync_peers():
            if 0 < peer.height <= self._ledger.height:
                continue
            try:
                if await self._fetch_range(peer):
                    return True
            except (grpc.aio.AioRpcError, SparkError) as exc:
                detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                log.info("sync_peer_failed", extra={"peer": peer.address, "error": detail})
        return False

    async def _fetch_range(self, peer: SyncPeer) -> bool:
        first = self._ledger.height + 1
        last = first + SYNC_RANGE_BLOCKS - 1
        if peer.height:
            last = min(last, peer.height)
        request = peer_pb2.GetBlocksRequest(from_height=first, to_height=last)
        progressed = False
        async for committed in peer.stub.GetBlocks(request, timeout=GET_BLOCKS_TIMEOUT_S):
            if self.apply(committed):
                progressed = True
        return progressed

    def apply(self, committed: peer_pb2.CommittedBlock) -> bool:
        """Check and commit one fetched block; False if we already have it."""
        certificate = committed.commit
        expected = self._ledger.height + 1
        if certificate.height < expected:
            return False  # consensus committed it here meanwhile
        if certificate.height != expected:
            raise SparkError(
                ErrorCode.INVALID_BLOCK,
                f"peer sent block {certificate.height}, expected {expected}",
            )
        if certificate.block_hash != block_hash(committed.block.header, self._ledger.hash_fn):
            raise SparkError(
                ErrorCode.INVALID_CERTIFICATE,
                f"certificate of block {expected} is for another block",
            )
        self._verify(self._ledger.chain_id, self._ledger.validators, certificate)
        # Every tx signature is checked here again (in validate_block), never taken as read:
        # the certificate covers the header, whose tx_root covers tx ids = SHA-256(body)
        # only, so the peer could have swapped any tx's signer or signature.
        pending = self._ledger.validate_block(committed.block.SerializeToString(deterministic=True))
        self._committer.commit(pending, certificate)
        return True


def block_source(
    ledger: Ledger,
) -> Callable[[peer_pb2.GetBlocksRequest], AsyncIterator[peer_pb2.CommittedBlock]]:
    """The serving side of Peer.GetBlocks: committed blocks with their certificates."""

    async def serve(request: peer_pb2.GetBlocksRequest) -> AsyncIterator[peer_pb2.CommittedBlock]:
        top = ledger.height
        first = max(1, request.from_height)
        last = min(request.to_height or top, top, first + MAX_GET_BLOCKS_RANGE - 1)
        for height in range(first, last + 1):
            block, _raw, certificate = ledger.get_block(height)
            committed = peer_pb2.CommittedBlock(block=block)
            if certificate is not None:
                committed.commit.CopyFrom(certificate)
            yield committed

    return serve
