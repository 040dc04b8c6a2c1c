"""Peer links between in-process endpoints on loopback: handshake (a relayed one refused),
one stream per pair, batched tx gossip, observer links, reconnects and the GetBlocks
stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.node import peers as peer_module
from sparkchain.node.grpc_errors import new_server
from sparkchain.node.peer_handshake import (
    LocalPeer,
    answer,
    check_admissible,
    check_answer,
    hello,
    new_nonce,
)
from sparkchain.node.peers import CHANNEL_OPTIONS, SERVER_OPTIONS, PeerEvents, PeerLink, PeerNetwork
from sparkchain.node.tls import new_authority
from sparkchain.proto import peer_pb2, peer_pb2_grpc
from sparkchain.proto import types_pb2 as pb
from tests.helpers.tls import peer_channel, peer_tls, peer_tls_for
from tests.helpers.waiting import until

CHAIN = "peers-test"
KEYS = [SigningKey.from_seed(bytes([i + 1]) * 32) for i in range(4)]
VALIDATORS = frozenset(k.public_key for k in KEYS[:3])
STRANGER = KEYS[3]


@dataclass
class Heard:
    proposals: list[pb.Proposal] = field(default_factory=list)
    votes: list[pb.Vote] = field(default_factory=list)
    txs: list[pb.SignedTx] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    links_up: list[PeerLink] = field(default_factory=list)

    def events(self) -> PeerEvents:
        return PeerEvents(
            on_proposal=lambda _l, p: self.proposals.append(p),
            on_vote=lambda _l, v: self.votes.append(v),
            on_txs=lambda _l, txs: self.txs.extend(txs),
            on_height=lambda _l, h: self.heights.append(h),
            on_link_up=self.links_up.append,
        )


@dataclass
class Endpoint:
    network: PeerNetwork
    server: grpc.aio.Server
    address: str
    heard: Heard


class Endpoints:
    """Builds in-process peers on free loopback ports and tears them down."""

    def __init__(self) -> None:
        self.started: list[Endpoint] = []
        self._seed = 0

    async def start(
        self,
        key: SigningKey,
        peers: list[str] = [],  # noqa: B006 (never mutated)
        *,
        chain_id: str = CHAIN,
        observer: bool = False,
        observers: frozenset[bytes] = frozenset(),
        port: int = 0,
        height: int = 0,
        blocks: list[peer_pb2.CommittedBlock] | None = None,
    ) -> Endpoint:
        heard = Heard()
        self._seed += 1

        async def source(req: peer_pb2.GetBlocksRequest) -> AsyncIterator[peer_pb2.CommittedBlock]:
            for committed in blocks or []:
                if req.from_height <= committed.commit.height <= (req.to_height or 2**63):
                    yield committed

        local = LocalPeer(chain_id, key, observer, VALIDATORS, observers)
        network = PeerNetwork(
            local,
            peers,
            heard.events(),
            lambda: height,
            peer_tls_for(key),
            block_source=source,
            rng=random.Random(self._seed),
        )
        server = new_server(SERVER_OPTIONS)
        network.add_to_server(server)
        bound = server.add_secure_port(f"127.0.0.1:{port}", network.server_credentials())
        await server.start()
        network.start()
        endpoint = Endpoint(network, server, f"127.0.0.1:{bound}", heard)
        self.started.append(endpoint)
        return endpoint

    async def stop(self, endpoint: Endpoint) -> None:
        await endpoint.network.close()
        await endpoint.server.stop(grace=None)
        self.started.remove(endpoint)

    async def close(self) -> None:
        for endpoint in list(self.started):
            await self.stop(endpoint)


@pytest.fixture
async def endpoints() -> AsyncIterator[Endpoints]:
    built = Endpoints()
    yield built
    await built.close()


def local(
    key: SigningKey,
    chain_id: str = CHAIN,
    observer: bool = False,
    observers: frozenset[bytes] = frozenset(),
) -> LocalPeer:
    return LocalPeer(chain_id, key, observer, VALIDATORS, observers)


def vote(height: int) -> peer_pb2.PeerMessage:
    return peer_pb2.PeerMessage(vote=pb.Vote(type=pb.PREVOTE, height=height, validator=b"v"))


def signed_tx(i: int) -> pb.SignedTx:
    return pb.SignedTx(body=i.to_bytes(4, "big"), signature=b"x" * 64)


# ---- the handshake itself (pure) ----


def test_handshake_answer_to_our_challenge_is_accepted() -> None:
    a, b = local(KEYS[0]), local(KEYS[1])
    nonce_a, nonce_b = b"a" * 32, b"b" * 32
    check_admissible(b, hello(a, nonce_a, 0))
    check_answer(a, answer(b, nonce_b, nonce_a, 7, a.key.public_key), nonce_a)


def test_handshake_answer_to_another_challenge_is_rejected() -> None:
    a, b = local(KEYS[0]), local(KEYS[1])
    replayed = answer(b, b"b" * 32, b"old-nonce".ljust(32, b"."), 0, a.key.public_key)
    with pytest.raises(SparkError) as caught:
        check_answer(a, replayed, b"a" * 32)
    assert caught.value.code == ErrorCode.BAD_SIGNATURE


def test_handshake_signed_by_another_key_is_rejected() -> None:
    a, b = local(KEYS[0]), local(KEYS[1])
    forged = answer(b, b"b" * 32, b"a" * 32, 0, a.key.public_key)
    forged.public_key = KEYS[2].public_key
    with pytest.raises(SparkError) as caught:
        check_answer(a, forged, b"a" * 32)
    assert caught.value.code == ErrorCode.BAD_SIGNATURE


def test_handshake_from_another_chain_is_wrong_chain() -> None:
    with pytest.raises(SparkError) as caught:
        check_admissible(local(KEYS[0]), hello(local(KEYS[1], "other-chain"), b"n" * 32, 0))
    assert caught.value.code == ErrorCode.WRONG_CHAIN


def test_handshake_from_key_outside_validator_set_is_unauthorized() -> None:
    with pytest.raises(SparkError) as caught:
        check_admissible(local(KEYS[0]), hello(local(STRANGER), b"n" * 32, 0))
    assert caught.value.code == ErrorCode.UNAUTHORIZED


def test_handshake_from_an_unlisted_observer_is_unauthorized() -> None:
    with pytest.raises(SparkError) as caught:
        check_admissible(local(KEYS[0]), hello(local(STRANGER, observer=True), b"n" * 32, 0))
    assert caught.value.code == ErrorCode.UNAUTHORIZED
    assert "[p2p] observers" in caught.value.message


def test_handshake_from_a_listed_observer_is_admitted() -> None:
    listed = local(KEYS[0], observers=frozenset({STRANGER.public_key}))
    check_admissible(listed, hello(local(STRANGER, observer=True), b"n" * 32, 0))
    with pytest.raises(SparkError) as caught:  # listed as an observer, not as a validator
        check_admissible(listed, hello(local(STRANGER), b"n" * 32, 0))
    assert caught.value.code == ErrorCode.UNAUTHORIZED


def test_handshake_with_itself_is_rejected() -> None:
    with pytest.raises(SparkError):
        check_admissible(local(KEYS[0]), hello(local(KEYS[0]), b"n" * 32, 0))


def test_handshake_nonces_are_fresh_and_full_length() -> None:
    nonces = {new_nonce() for _ in range(64)}
    assert len(nonces) == 64 and {len(n) for n in nonces} == {32}


def test_an_answer_made_for_another_peer_is_refused() -> None:
    """The answer names the peer it is for: one a validator made for Mallory does not
    authenticate it to V, though the challenge is the same."""
    v, b, mallory = local(KEYS[0]), local(KEYS[1]), local(KEYS[2])
    challenge = new_nonce()
    check_answer(v, answer(b, new_nonce(), challenge, 0, v.key.public_key), challenge)
    with pytest.raises(SparkError) as caught:
        check_answer(v, answer(b, new_nonce(), challenge, 0, mallory.key.public_key), challenge)
    assert caught.value.code == ErrorCode.BAD_SIGNATURE


# ---- links on loopback ----


async def test_two_validators_that_dial_each_other_keep_one_stream(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address])
    await endpoints.stop(a)
    a = await endpoints.start(KEYS[0], [b.address], port=int(a.address.rsplit(":", 1)[1]))
    await until(lambda: bool(a.network.links()) and bool(b.network.links()))
    await asyncio.sleep(0.3)  # let any second stream of the pair finish its handshake
    (link_a,) = a.network.links()
    (link_b,) = b.network.links()
    assert link_a.key == KEYS[1].public_key and link_b.key == KEYS[0].public_key
    # both ends kept the stream dialed by the smaller key
    assert link_a.dialer_key == link_b.dialer_key == min(KEYS[0].public_key, KEYS[1].public_key)


async def test_consensus_messages_reach_validator_peers(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address])
    c = await endpoints.start(KEYS[2], [a.address, b.address])
    await until(lambda: len(c.network.links()) == 2 and len(a.network.links()) == 2)
    c.network.broadcast(vote(5))
    await until(lambda: bool(a.heard.votes) and bool(b.heard.votes))
    assert a.heard.votes[0].height == b.heard.votes[0].height == 5


async def test_tx_gossip_travels_in_one_batch_not_one_message_per_tx(
    endpoints: Endpoints,
) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address])
    await until(lambda: bool(b.network.links()) and bool(a.network.links()))
    for i in range(500):
        b.network.gossip([signed_tx(i)])  # one at a time, as the mempool admits them
    await until(lambda: len(a.heard.txs) == 500)
    (link,) = a.network.links()
    assert link.received["txs"] == 1
    assert [tx.body for tx in a.heard.txs] == [signed_tx(i).body for i in range(500)]


async def test_peer_on_another_chain_is_refused(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address], chain_id="other-chain")
    await until(lambda: bool(b.network.dial_errors()))
    assert "WRONG_CHAIN" in b.network.dial_errors()[a.address]
    assert a.network.links() == [] and b.network.links() == []


async def test_key_outside_validator_set_is_refused(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    stranger = await endpoints.start(STRANGER, [a.address])
    await until(lambda: bool(stranger.network.dial_errors()))
    assert "UNAUTHORIZED" in stranger.network.dial_errors()[a.address]
    assert a.network.links() == []


async def test_an_unlisted_observer_is_refused_and_the_refusal_logged(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="spark.peers")
    a = await endpoints.start(KEYS[0])
    observer = await endpoints.start(STRANGER, [a.address], observer=True)
    await until(lambda: bool(observer.network.dial_errors()))
    assert "UNAUTHORIZED" in observer.network.dial_errors()[a.address]
    assert "[p2p] observers" in observer.network.dial_errors()[a.address]
    assert a.network.links() == []
    rejected = [r for r in caplog.records if r.getMessage() == "peer_rejected"]
    assert rejected and STRANGER.public_key.hex() in rejected[0].error  # type: ignore[attr-defined]


async def test_a_listed_observer_follows_heights_but_its_txs_and_votes_are_ignored(
    endpoints: Endpoints,
) -> None:
    a = await endpoints.start(KEYS[0], observers=frozenset({STRANGER.public_key}))
    observer = await endpoints.start(STRANGER, [a.address], observer=True)
    await until(lambda: bool(a.network.links()) and bool(observer.network.links()))
    (link_at_a,) = a.network.links()
    assert link_at_a.observer
    a.network.broadcast(vote(3))
    a.network.announce_height(42)
    (link_at_observer,) = observer.network.links()
    link_at_observer.send(peer_pb2.PeerMessage(txs=peer_pb2.TxBatch(txs=[signed_tx(1)])))
    link_at_observer.send(vote(4))
    await until(lambda: observer.heard.heights == [42] and link_at_a.received["vote"] == 1)
    await until(lambda: link_at_a.received["txs"] == 1)
    assert a.heard.txs == [] and a.heard.votes == []  # txs travel between validators only
    assert observer.heard.votes == []
    assert link_at_observer.height == 42
    assert link_at_observer.received["vote"] == 0


async def test_observer_links_beyond_the_cap_are_refused_and_back_off(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peer_module, "MAX_OBSERVER_LINKS", 1)
    second = SigningKey.from_seed(b"\x09" * 32)
    listed = frozenset({STRANGER.public_key, second.public_key})
    a = await endpoints.start(KEYS[0], observers=listed)
    first_observer = await endpoints.start(STRANGER, [a.address], observer=True)
    await until(lambda: len(a.network.links()) == 1)
    second_observer = await endpoints.start(second, [a.address], observer=True)
    await until(lambda: bool(second_observer.network.dial_errors()))
    error = second_observer.network.dial_errors()[a.address]
    assert "RESOURCE_EXHAUSTED" in error and "MAX_OBSERVER_LINKS = 1" in error
    assert [link.key for link in a.network.links()] == [STRANGER.public_key]
    await endpoints.stop(first_observer)  # a place frees up: the refused one gets in
    await until(lambda: [link.key for link in a.network.links()] == [second.public_key], 10)


async def test_restarted_peer_is_redialed_and_link_up_fires_again(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address])
    await until(lambda: len(b.heard.links_up) == 1)
    port = int(a.address.rsplit(":", 1)[1])
    await endpoints.stop(a)
    await until(lambda: b.network.links() == [])
    a = await endpoints.start(KEYS[0], port=port)
    await until(lambda: len(b.heard.links_up) == 2 and bool(a.network.links()))
    # the runtime re-sends its latest votes from on_link_up; they arrive on the new stream
    b.network.link_to(KEYS[0].public_key).send(vote(9))  # type: ignore[union-attr]
    await until(lambda: [v.height for v in a.heard.votes] == [9])


async def test_get_blocks_streams_the_requested_range(endpoints: Endpoints) -> None:
    blocks = [peer_pb2.CommittedBlock(commit=pb.CommitCertificate(height=h)) for h in range(1, 11)]
    a = await endpoints.start(KEYS[0], blocks=blocks, height=10)
    b = await endpoints.start(KEYS[1], [a.address])
    await until(lambda: bool(b.network.sync_peers()))
    (peer,) = b.network.sync_peers()
    assert peer.key == KEYS[0].public_key and peer.height == 10
    got = [
        c.commit.height
        async for c in peer.stub.GetBlocks(peer_pb2.GetBlocksRequest(from_height=3, to_height=6))
    ]
    assert got == [3, 4, 5, 6]


# ---- a relayed handshake (identity misbinding) ----


class RelayingPeer(peer_pb2_grpc.PeerServicer):
    """Mallory (a validator herself) is dialed by V. She opens her own, honest link to B and
    uses V's challenge as her nonce there; B's signed answer to *her* is forwarded to V as if
    B had answered V."""

    def __init__(self, mallory: LocalPeer, b_address: str) -> None:
        self.mallory = mallory
        # Mallory dials B with her own certificate: she is a member of the network
        self.channel = peer_channel(b_address, peer_tls_for(mallory.key))
        self._b = peer_pb2_grpc.PeerStub(self.channel)
        self.calls: list[Any] = []

    async def Connect(self, request_iterator: Any, context: Any) -> None:  # gRPC's name
        first = await context.read()
        v_nonce = first.handshake.nonce
        call = self._b.Connect()
        self.calls.append(call)
        await call.write(peer_pb2.PeerMessage(handshake=hello(self.mallory, v_nonce, 0)))
        b_answer = await call.read()
        await context.write(b_answer)  # B's signature, for Mallory's link, sent to V
        await context.read()  # V's signed answer: V now believes this stream is B
        await asyncio.sleep(30)  # hold the stream open; the server's stop cancels this


async def test_a_peer_cannot_pass_off_another_validators_handshake_as_its_own(
    endpoints: Endpoints,
) -> None:
    v_key, b_key, mallory_key = KEYS[:3]  # all three validators
    b = await endpoints.start(b_key)
    async with contextlib.AsyncExitStack() as cleanup:
        relay = RelayingPeer(local(mallory_key), b.address)
        cleanup.push_async_callback(relay.channel.close, None)
        m_server = grpc.aio.server(options=SERVER_OPTIONS)
        peer_pb2_grpc.add_PeerServicer_to_server(relay, m_server)
        m_port = m_server.add_secure_port(
            "127.0.0.1:0", peer_tls_for(mallory_key).server_credentials()
        )
        m_address = f"127.0.0.1:{m_port}"
        await m_server.start()
        cleanup.push_async_callback(m_server.stop, None)
        v = await endpoints.start(v_key, [m_address])
        cleanup.push_async_callback(endpoints.stop, v)
        await until(lambda: bool(v.network.links()) or bool(v.network.dial_errors()))
        assert v.network.link_to(b_key.public_key) is None, "V took Mallory's stream for B's"
        assert "BAD_SIGNATURE" in v.network.dial_errors()[m_address]


async def test_a_peers_refused_messages_make_one_log_line_per_interval_without_traceback(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address])
    await until(lambda: bool(a.network.links()) and bool(b.network.links()))

    def refuse(_link: PeerLink, _proposal: pb.Proposal) -> None:
        raise SparkError(ErrorCode.INVALID_BLOCK, "block does not decode")

    a.network.events.on_proposal = refuse
    caplog.set_level("DEBUG", logger="spark.peers")
    for height in range(1, 51):
        b.network.broadcast(peer_pb2.PeerMessage(proposal=pb.Proposal(height=height)))
    (link,) = a.network.links()
    await until(lambda: link.received["proposal"] == 50)
    lines = [r for r in caplog.records if r.getMessage().startswith("peer_message")]
    assert [r.getMessage() for r in lines] == ["peer_message_refused"]
    assert not lines[0].exc_info
    assert lines[0].__dict__["error"] == "INVALID_BLOCK: block does not decode"
    assert lines[0].__dict__["peer"] == KEYS[1].public_key.hex()[:12]


@pytest.mark.parametrize("method", ["/spark.v1.Peer/Connect", "/spark.v1.Peer/GetBlocks"])
async def test_a_request_that_does_not_decode_is_invalid_argument_on_the_peer_port(
    endpoints: Endpoints, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await endpoints.start(KEYS[0])
    caplog.set_level("DEBUG")
    async with peer_channel(a.address, peer_tls_for(KEYS[1])) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"\xff\xff\xff\xff", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"INVALID_ARGUMENT: {method}: ")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---- mutual TLS on the peer port ----


async def _connect_as(
    address: str, channel: grpc.aio.Channel, key: SigningKey
) -> peer_pb2.PeerMessage:
    """Dial `address` on `channel` and say hello as `key`; the acceptor's first answer."""
    call = peer_pb2_grpc.PeerStub(channel).Connect()
    await call.write(peer_pb2.PeerMessage(handshake=hello(local(key), new_nonce(), 0)))
    message = await call.read()
    assert isinstance(message, peer_pb2.PeerMessage)
    return message


async def test_a_plaintext_peer_is_refused(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    async with grpc.aio.insecure_channel(a.address, CHANNEL_OPTIONS) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(_connect_as(a.address, channel, KEYS[1]), 10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert a.network.links() == []


async def test_a_certificate_of_another_ca_is_refused(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    outsider = peer_tls(KEYS[1].public_key, new_authority("another network"))
    async with peer_channel(a.address, outsider) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(_connect_as(a.address, channel, KEYS[1]), 10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert a.network.links() == []


async def test_a_certificate_bound_to_another_node_key_is_refused(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    # validator 2's certificate, with validator 1's key in the handshake
    async with peer_channel(a.address, peer_tls_for(KEYS[2])) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(_connect_as(a.address, channel, KEYS[1]), 10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "is not the key in its TLS certificate" in (caught.value.details() or "")
    assert a.network.links() == []


async def test_the_certificates_own_key_gets_an_answer(endpoints: Endpoints) -> None:
    a = await endpoints.start(KEYS[0])
    async with peer_channel(a.address, peer_tls_for(KEYS[1])) as channel:
        message = await asyncio.wait_for(_connect_as(a.address, channel, KEYS[1]), 10)
    assert message.handshake.public_key == KEYS[0].public_key


async def test_a_validator_removed_from_the_set_loses_its_link_and_cannot_relink(
    endpoints: Endpoints,
) -> None:
    a = await endpoints.start(KEYS[0])
    b = await endpoints.start(KEYS[1], [a.address])
    await until(lambda: bool(a.network.links()) and bool(b.network.links()))
    # the chain removed KEYS[1]: a's sets of the next heights no longer hold it
    a.network.set_validators(frozenset(VALIDATORS) - {KEYS[1].public_key})
    await until(lambda: not a.network.links())
    await until(lambda: "UNAUTHORIZED" in b.network.dial_errors().get(a.address, ""))
    assert a.network.links() == []
