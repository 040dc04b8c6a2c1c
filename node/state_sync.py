"""State sync (issue 13 part 4): a new node fetches a recent snapshot from its peers instead
of replaying the chain from the genesis, then block-syncs from there (node/sync.py).

1. Ask every configured peer for its snapshots (Peer.ListSnapshots); group the offers by
   manifest (chunking is deterministic, so peers with the same state offer the same one);
   try the newest first.
2. Fetch every chunk (a few at a time), each from a peer that offers that manifest, and
   check it against the manifest's hash (the chain's hash, from the genesis) as it arrives:
   a chunk that does not match is refused, logged with the peer that sent it, and fetched
   from the next peer.
3. Fetch block H and the blocks that changed the validator set (Peer.GetBlocks, any peer).
4. Check everything against the genesis and write it (node/snapshot_restore.py), then keep
   the snapshot as this node's base (`spark ledger verify` starts from it; peers may fetch
   it from here).
A snapshot that fails a check is dropped and the next offer tried. With no snapshot on
offer for STATE_SYNC_DISCOVERY_MS, the node block-syncs from the genesis instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    MAX_SNAPSHOTS_LISTED,
    STATE_SYNC_DISCOVERY_MS,
    STATE_SYNC_RPC_TIMEOUT_MS,
)
from sparkchain.node.ledger import Ledger
from sparkchain.node.peers import PeerNetwork
from sparkchain.node.snapshot_restore import check_chunk, check_manifest, snapshot_change_heights
from sparkchain.node.snapshot_write import RestoreTimes, restore_snapshot
from sparkchain.node.snapshots import SnapshotStore
from sparkchain.proto import peer_pb2

if TYPE_CHECKING:
    from sparkchain.proto import peer_pb2_grpc

log = logging.getLogger("spark.state_sync")

CHUNKS_IN_FLIGHT = 4
DISCOVERY_RETRY_S = 1.0
_TIMEOUT_S = STATE_SYNC_RPC_TIMEOUT_MS / 1000

if TYPE_CHECKING:
    Stub = tuple[str, peer_pb2_grpc.PeerAsyncStub]  # (address, stub)


@dataclass
class _Offer:
    manifest: peer_pb2.SnapshotManifest
    peers: list[Stub] = field(default_factory=list)


class StateSync:
    def __init__(
        self,
        ledger: Ledger,
        network: PeerNetwork,
        store: SnapshotStore,
        *,
        discovery_ms: int = STATE_SYNC_DISCOVERY_MS,
    ) -> None:
        self._ledger = ledger
        self._network = network
        self._store = store
        self._discovery_s = discovery_ms / 1000
        self.refused_chunks = 0  # chunks that did not match their hash (any peer)
        self.running = False
        self._writing: asyncio.Future[tuple[int, RestoreTimes]] | None = None

    async def close(self) -> None:
        """Wait for a snapshot being written into the ledger (the node stops after)."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)

    async def run(self) -> bool:
        """Restore the newest snapshot on offer; False if none could be within the
        discovery time (the caller block-syncs from the genesis then)."""
        self.running = True
        try:
            return await self._run()
        finally:
            self.running = False

    async def _run(self) -> bool:
        deadline = time.monotonic() + self._discovery_s
        refused: set[bytes] = set()
        while True:
            offers = await self._offers()
            for key, offer in offers.items():
                if key in refused:
                    continue
                try:
                    await self._restore(offer)
                    return True
                except SparkError as error:
                    refused.add(key)
                    log.warning(
                        "snapshot_refused",
                        extra={"height": offer.manifest.height, "error": error.message},
                    )
            if time.monotonic() > deadline:
                log.warning(
                    "state_sync_gave_up",
                    extra={
                        "why": "no peer offered a snapshot that checks out",
                        "then": "block sync",
                    },
                )
                return False
            await asyncio.sleep(DISCOVERY_RETRY_S)

    async def _offers(self) -> dict[bytes, _Offer]:
        """Every manifest on offer, newest first, with the peers offering it."""
        offers: dict[bytes, _Offer] = {}
        for address, stub in self._network.peer_stubs():
            try:
                response = await stub.ListSnapshots(
                    peer_pb2.ListSnapshotsRequest(), timeout=_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as error:
                log.info("snapshot_list_failed", extra={"peer": address, "error": error.details()})
                continue
            for manifest in response.snapshots[:MAX_SNAPSHOTS_LISTED]:
                try:
                    check_manifest(manifest)
                except SparkError:
                    continue
                key = manifest.SerializeToString(deterministic=True)
                offers.setdefault(key, _Offer(manifest)).peers.append((address, stub))
        return dict(sorted(offers.items(), key=lambda item: -item[1].manifest.height))

    async def _restore(self, offer: _Offer) -> None:
        manifest = offer.manifest
        height = manifest.height
        started = time.monotonic()
        log.info(
            "state_sync_started",
            extra={
                "height": height,
                "chunks": len(manifest.chunk_hashes),
                "bytes": manifest.total_bytes,
                "peers": [address for address, _ in offer.peers],
            },
        )
        slots = asyncio.Semaphore(CHUNKS_IN_FLIGHT)

        async def fetch(index: int) -> bytes:
            async with slots:
                return await self._chunk(manifest, index, offer.peers)

        chunks = await asyncio.gather(*(fetch(i) for i in range(len(manifest.chunk_hashes))))
        change_at = await asyncio.to_thread(snapshot_change_heights, chunks, height)
        base = await self._block(height)
        changes = [await self._block(h) for h in change_at]
        fetched = time.monotonic()

        def restore() -> tuple[int, RestoreTimes]:
            verified, times = restore_snapshot(self._ledger, manifest, chunks, base, changes)
            counted = list(zip(chunks, verified.entries.chunk_entries, strict=True))
            self._store.write(
                height,
                manifest.block_hash,
                manifest.state_root,
                counted,
                base=True,
                snapshot_format=manifest.format,
            )
            return len(verified.entries.keys), times

        # it writes while it checks: a stop meanwhile waits for the thread (close()), never
        # closes the ledger under it
        self._writing = asyncio.ensure_future(asyncio.to_thread(restore))
        entries, times = await asyncio.shield(self._writing)
        log.info(
            "state_synced",
            extra={
                "height": height,
                "entries": entries,
                "fetch_and_check_s": round(fetched - started + times.check_s, 3),
                "write_s": round(times.write_s, 3),
                "refused_chunks": self.refused_chunks,
            },
        )

    async def _chunk(
        self, manifest: peer_pb2.SnapshotManifest, index: int, peers: list[Stub]
    ) -> bytes:
        """Chunk `index`, from the first peer (starting at one chosen by the index, to spread
        the load) that sends it intact."""
        start = index % len(peers)
        request = peer_pb2.GetSnapshotChunkRequest(height=manifest.height, index=index)
        for address, stub in peers[start:] + peers[:start]:
            try:
                response = await stub.GetSnapshotChunk(request, timeout=_TIMEOUT_S)
                check_chunk(manifest, index, response.data, self._ledger.hash_fn)
                return bytes(response.data)
            except grpc.aio.AioRpcError as error:
                log.info(
                    "snapshot_chunk_failed",
                    extra={"peer": address, "index": index, "error": error.details()},
                )
            except SparkError as error:
                self.refused_chunks += 1
                log.warning(
                    "snapshot_chunk_refused",
                    extra={"peer": address, "index": index, "error": error.message},
                )
        raise SparkError(
            ErrorCode.UNAVAILABLE,
            f"no peer sent chunk {index} of snapshot {manifest.height} intact",
        )

    async def _block(self, height: int) -> peer_pb2.CommittedBlock:
        """Block `height` with its certificate, from any peer (checked by restore_snapshot)."""
        request = peer_pb2.GetBlocksRequest(from_height=height, to_height=height)
        for address, stub in self._network.peer_stubs():
            try:
                async for committed in stub.GetBlocks(request, timeout=_TIMEOUT_S):
                    if committed.commit.height == height:
                        return committed
            except grpc.aio.AioRpcError as error:
                log.info("snapshot_block_failed", extra={"peer": address, "error": error.details()})
        raise SparkError(ErrorCode.UNAVAILABLE, f"no peer sent block {height} with its certificate")
