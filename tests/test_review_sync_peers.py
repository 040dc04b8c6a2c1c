"""Security review: block sync and peer handshakes attacked as a malicious peer would.

A block's hash covers its header only, and the header's tx_root covers tx ids, which are
SHA-256 of the tx *bodies*: nothing a quorum signed covers a tx's `signer` or `signature`.
So a peer serving a certified block can swap those freely, and a follower must check every
tx signature itself. The handshake must not let one peer pass off another validator's
signed answer as its own (a relay of a third party's answer).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.node.commit import Committer
from sparkchain.node.events import CommitBus
from sparkchain.node.ledger import Ledger
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.node.peer_handshake import LocalPeer, hello, new_nonce
from sparkchain.node.peers import CHANNEL_OPTIONS, SERVER_OPTIONS, PeerEvents, PeerNetwork
from sparkchain.node.sync import BlockSync, block_source
from sparkchain.proto import peer_pb2, peer_pb2_grpc
from tests.helpers.chain import value
from tests.helpers.ledger import LedgerChain
from tests.helpers.waiting import until as _until

# ---- block sync ----


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LedgerChain]:
    chain = LedgerChain(tmp_path / "source")
    acme = chain.signer("acme")
    for height in (1, 2):
        chain.commit(
            [
                acme.register(f"88/r{height}-{i}", [value(1, "URL", "https://e.x")], now_ms=t)
                for i, t in enumerate([chain.next_time_ms] * 2)
            ]
        )
    yield chain
    chain.close()


class Follower:
    def __init__(self, path: Path, source: LedgerChain) -> None:
        self.ledger = Ledger.open(path, source.genesis)
        bus = CommitBus()
        mempool = Mempool(self.ledger, MempoolLimits(), None, bus=bus)
        self.sync = BlockSync(self.ledger, Committer(self.ledger, mempool, bus), None)


@pytest.fixture
def follower(tmp_path: Path, source: LedgerChain) -> Iterator[Follower]:
    built = Follower(tmp_path / "follower", source)
    yield built
    built.ledger.close()


async def _first_block(source: LedgerChain) -> peer_pb2.CommittedBlock:
    request = peer_pb2.GetBlocksRequest(from_height=1, to_height=1)
    (committed,) = [c async for c in block_source(source.ledger)(request)]
    return committed


async def test_certified_block_with_a_swapped_tx_signature_is_refused(
    source: LedgerChain, follower: Follower
) -> None:
    """The certificate and tx_root still match (they do not cover signatures); the follower
    must not commit, store and re-serve a tx whose signature nobody made."""
    committed = await _first_block(source)
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
    committed = await _first_block(source)
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


# ---- handshake relay (identity misbinding) ----

CHAIN = "review-peers"
V_KEY, B_KEY, M_KEY = (SigningKey.from_seed(bytes([40 + i]) * 32) for i in range(3))
VALIDATORS = frozenset({V_KEY.public_key, B_KEY.public_key, M_KEY.public_key})


class _RelayingPeer(peer_pb2_grpc.PeerServicer):
    """Mallory (a validator herself) is dialed by V. She opens her own, honest link to B and
    uses V's challenge as her nonce there; B's signed answer to *her* is forwarded to V as if
    B had answered V."""

    def __init__(self, b_address: str) -> None:
        self.channel = grpc.aio.insecure_channel(b_address, CHANNEL_OPTIONS)
        self._b = peer_pb2_grpc.PeerStub(self.channel)
        self.calls: list[Any] = []

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        first = await context.read()
        v_nonce = first.handshake.nonce
        mallory = LocalPeer(CHAIN, M_KEY, False, VALIDATORS)
        call = self._b.Connect()
        self.calls.append(call)
        await call.write(peer_pb2.PeerMessage(handshake=hello(mallory, v_nonce, 0)))
        b_answer = await call.read()
        await context.write(b_answer)  # B's signature, for Mallory's link, sent to V
        await context.read()  # V's signed answer: V now believes this stream is B
        await asyncio.sleep(30)


async def _network(key: SigningKey, peers: list[str]) -> tuple[PeerNetwork, grpc.aio.Server, str]:
    network = PeerNetwork(
        LocalPeer(CHAIN, key, False, VALIDATORS),
        peers,
        PeerEvents(),
        lambda: 0,
        rng=random.Random(7),
    )
    server = grpc.aio.server(options=SERVER_OPTIONS)
    network.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    network.start()
    return network, server, f"127.0.0.1:{port}"


@pytest.fixture
async def stack() -> AsyncIterator[list[Any]]:
    started: list[Any] = []
    yield started
    for item in reversed(started):
        if isinstance(item, PeerNetwork):
            await item.close()
        elif isinstance(item, grpc.aio.Channel):
            await item.close(grace=None)
        else:
            await item.stop(grace=None)


async def test_a_peer_cannot_pass_off_another_validators_handshake_as_its_own(
    stack: list[Any],
) -> None:
    b_network, b_server, b_address = await _network(B_KEY, [])
    stack += [b_server, b_network]
    relay = _RelayingPeer(b_address)
    stack.append(relay.channel)
    m_server = grpc.aio.server(options=SERVER_OPTIONS)
    peer_pb2_grpc.add_PeerServicer_to_server(relay, m_server)
    m_address = f"127.0.0.1:{m_server.add_insecure_port('127.0.0.1:0')}"
    await m_server.start()
    stack.append(m_server)
    v_network, v_server, _ = await _network(V_KEY, [m_address])
    stack += [v_server, v_network]
    await _until(lambda: bool(v_network.links()) or bool(v_network.dial_errors()))
    assert v_network.link_to(B_KEY.public_key) is None, "V took Mallory's stream for B's"
    assert "BAD_SIGNATURE" in v_network.dial_errors()[m_address]


def test_handshake_nonces_are_fresh_and_full_length() -> None:
    nonces = {new_nonce() for _ in range(64)}
    assert len(nonces) == 64 and {len(n) for n in nonces} == {32}


def test_an_answer_made_for_another_peer_is_refused() -> None:
    from sparkchain.node.peer_handshake import answer, check_answer

    v = LocalPeer(CHAIN, V_KEY, False, VALIDATORS)
    b = LocalPeer(CHAIN, B_KEY, False, VALIDATORS)
    challenge = new_nonce()
    check_answer(v, answer(b, new_nonce(), challenge, 0, V_KEY.public_key), challenge)
    with pytest.raises(SparkError) as caught:
        check_answer(v, answer(b, new_nonce(), challenge, 0, M_KEY.public_key), challenge)
    assert caught.value.code == ErrorCode.BAD_SIGNATURE
