"""Block sync: a follower commits a peer's blocks only with a valid certificate, the same
re-executed state root and tx signatures it checked itself; the serving side streams
ranges from the ledger."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.ledger.blocks import block_hash, encode_header
from sparkchain.node.commit import Committer
from sparkchain.node.driver import read_last_signed
from sparkchain.node.durable import write_durably
from sparkchain.node.events import CommitBus
from sparkchain.node.ledger import Ledger
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.node.peer_handshake import LocalPeer
from sparkchain.node.peers import SERVER_OPTIONS, PeerEvents, PeerNetwork
from sparkchain.node.sync import BlockSync, block_source
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import key, value
from tests.helpers.ledger import LedgerChain, certificate
from tests.helpers.tls import peer_tls_for
from tests.helpers.waiting import until

BLOCKS = 6


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LedgerChain]:
    """A chain of BLOCKS blocks, each registering two identifiers under 88."""
    chain = LedgerChain(tmp_path / "source")
    acme = chain.signer("acme")
    for height in range(1, BLOCKS + 1):
        txs = [
            acme.register(
                f"88/s{height}-{i}", [value(1, "URL", "https://e.x")], now_ms=chain.next_time_ms
            )
            for i in range(2)
        ]
        chain.commit(txs)
    yield chain
    chain.close()


class Follower:
    def __init__(self, path: Path, source: LedgerChain, network: Any = None) -> None:
        self.ledger = Ledger.open(path, source.genesis)
        self.bus = CommitBus()
        self.mempool = Mempool(self.ledger, MempoolLimits(), None, bus=self.bus)
        self.committer = Committer(self.ledger, self.mempool, self.bus)
        self.caught_up: list[int] = []
        self.sync = BlockSync(
            self.ledger,
            self.committer,
            network,
            on_caught_up=self.caught_up.append,
            follow=True,
        )


@pytest.fixture
def follower(tmp_path: Path, source: LedgerChain) -> Iterator[Follower]:
    built = Follower(tmp_path / "follower", source)
    yield built
    built.ledger.close()


async def served(source: LedgerChain, first: int = 1, last: int = 0) -> list[Any]:
    request = peer_pb2.GetBlocksRequest(from_height=first, to_height=last)
    return [committed async for committed in block_source(source.ledger)(request)]


async def test_serving_side_streams_the_requested_range(source: LedgerChain) -> None:
    assert [c.commit.height for c in await served(source, 2, 4)] == [2, 3, 4]
    assert [c.commit.height for c in await served(source, 5)] == [5, 6]


async def test_certified_blocks_commit_and_reach_the_same_state_root(
    source: LedgerChain, follower: Follower
) -> None:
    for committed in await served(source):
        assert follower.sync.apply(committed)
    assert follower.ledger.height == BLOCKS
    assert follower.ledger.state_root == source.ledger.state_root
    assert follower.ledger.resolve("88/s3-1").identifier == "88/s3-1"


async def test_a_block_already_committed_is_skipped(source: LedgerChain, follower: Follower):
    blocks = await served(source, 1, 2)
    for committed in blocks:
        follower.sync.apply(committed)
    assert not follower.sync.apply(blocks[0])
    assert follower.ledger.height == 2


async def test_certificate_without_a_quorum_is_refused(source: LedgerChain, follower: Follower):
    (first,) = await served(source, 1, 1)
    first.commit.CopyFrom(certificate(source.genesis, 1, first.commit.block_hash, signers=2))
    with pytest.raises(SparkError) as refused:
        follower.sync.apply(first)
    assert refused.value.code == ErrorCode.INVALID_CERTIFICATE
    assert follower.ledger.height == 0


async def test_certificate_of_another_block_is_refused(source: LedgerChain, follower: Follower):
    first, second = await served(source, 1, 2)
    first.commit.block_hash = second.commit.block_hash
    with pytest.raises(SparkError) as refused:
        follower.sync.apply(first)
    assert refused.value.code == ErrorCode.INVALID_CERTIFICATE


async def test_certified_block_with_a_false_state_root_is_refused(
    source: LedgerChain, follower: Follower
) -> None:
    """Even a quorum's signature does not make a wrong state root acceptable: the follower
    re-executes the block."""
    (first,) = await served(source, 1, 1)
    header = pb.BlockHeader.FromString(first.block.header)
    header.state_root = b"\x07" * 32
    first.block.header = encode_header(header)
    forged_hash = block_hash(first.block.header)
    first.commit.CopyFrom(certificate(source.genesis, 1, forged_hash))
    with pytest.raises(SparkError) as refused:
        follower.sync.apply(first)
    assert refused.value.code == ErrorCode.INVALID_BLOCK
    assert follower.ledger.height == 0


# ---- a peer that swaps tx signatures in a certified block ----
#
# A block's hash covers its header only, and the header's tx_root covers tx ids, which are
# SHA-256 of the tx *bodies*: nothing a quorum signed covers a tx's `signer` or
# `signature`. So a peer serving a certified block can swap those freely, and a follower
# must check every tx signature itself.


async def test_certified_block_with_a_swapped_tx_signature_is_refused(
    source: LedgerChain, follower: Follower
) -> None:
    """The certificate and tx_root still match (they do not cover signatures); the follower
    must not commit, store and re-serve a tx whose signature nobody made."""
    (committed,) = await served(source, 1, 1)
    committed.block.txs[0].signature = bytes(64)
    with pytest.raises(SparkError) as refused:
        follower.sync.apply(committed)
    assert "signature" in refused.value.message.lower()
    assert follower.ledger.height == 0


async def test_refused_sync_block_leaves_no_signature_trusted(
    source: LedgerChain, follower: Follower
) -> None:
    """A genuine certificate with a foreign body: the block is refused, and the forged tx it
    carried must not be remembered as signature-checked (else a byzantine proposer's block
    holding it would pass this validator's re-execution unverified)."""
    (committed,) = await served(source, 1, 1)
    acme = source.signer("acme", seed=99)
    now_ms = source.genesis.genesis_time_ms + 1000  # valid at the follower's next block
    forged = acme.register("88/stolen", [value(1, "URL", "https://evil")], now_ms=now_ms)
    forged.signature = bytes(64)  # anyone can write this: acme never signed it
    del committed.block.txs[:]
    committed.block.txs.append(forged)
    with pytest.raises(SparkError):
        follower.sync.apply(committed)
    with pytest.raises(SparkError) as checked:
        follower.ledger.check_tx(forged, now_ms)
    assert checked.value.code == ErrorCode.BAD_SIGNATURE
    built = follower.ledger.build_block([forged], now_ms, source.genesis.validators[0].public_key)
    assert list(built.block.txs) == []
    assert [error.code for _, error in built.rejected] == [ErrorCode.BAD_SIGNATURE]


# ---- fetching from a peer over gRPC ----


async def test_follower_fetches_from_a_peer_over_grpc(tmp_path: Path, source: LedgerChain) -> None:
    validators = frozenset(source.genesis.validator_keys)
    chain_id = source.genesis.chain_id
    observer_key = key("observer").public_key
    serving = PeerNetwork(
        # the validator lists the observer (DESIGN §11: unlisted observers are refused)
        LocalPeer(chain_id, key("validator1"), False, validators, frozenset({observer_key})),
        [],
        PeerEvents(),
        lambda: source.ledger.height,
        peer_tls_for(key("validator1")),
        block_source=block_source(source.ledger),
        rng=random.Random(1),
    )
    server = grpc.aio.server(options=SERVER_OPTIONS)
    serving.add_to_server(server)
    port = server.add_secure_port("127.0.0.1:0", serving.server_credentials())
    await server.start()
    events = PeerEvents()
    observer = PeerNetwork(
        LocalPeer(chain_id, key("observer"), True, validators),
        [f"127.0.0.1:{port}"],
        events,
        lambda: 0,
        peer_tls_for(key("observer")),
        rng=random.Random(2),
    )
    follower = Follower(tmp_path / "observer", source, observer)
    events.on_height = lambda _link, height: follower.sync.notice_height(height)
    observer.start()
    follower.sync.start()
    try:
        await until(lambda: follower.ledger.height == BLOCKS)
        await until(lambda: follower.caught_up == [BLOCKS])
        assert follower.ledger.state_root == source.ledger.state_root
    finally:
        await follower.sync.close()
        await observer.close()
        await serving.close()
        await server.stop(grace=None)
        follower.ledger.close()


# ---- the consensus driver's last-signed record on disk (node/driver.py) ----


def test_last_signed_record_is_replaced_whole(tmp_path: Path) -> None:
    from sparkchain.consensus.lastsigned import LastSigned
    from sparkchain.consensus.messages import Step

    path = tmp_path / "data" / "last_signed"
    assert read_last_signed(path) is None
    for height in (1, 2):
        record = LastSigned(b"k" * 32, height, 0, Step.PREVOTE, b"h" * 32, -1, b"s" * 64)
        write_durably(path, record.to_bytes())
        assert read_last_signed(path) == record
    assert sorted(p.name for p in path.parent.iterdir()) == ["last_signed"]
