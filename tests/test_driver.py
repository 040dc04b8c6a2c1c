"""The consensus driver with real cores, ledgers and mempools, over an in-process network on
a virtual clock (tests/helpers/virtual_clock.py; no gRPC, no real waiting: time jumps to
the next timer when nothing runs).

The relay: in a line of three validators A - B - C (A and C cannot reach each other, and
n = 3 needs all three votes), A hears C's messages only through B relaying them, and C
hears A's likewise. Without the relay no height can ever commit.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sparkchain.consensus import wire
from sparkchain.consensus.crypto import Ed25519Signer
from sparkchain.consensus.messages import Proposal, Vote, VoteType
from sparkchain.consensus.relay import message_key
from sparkchain.consensus.signbytes import chain_prefix, proposal_sign_bytes, vote_sign_bytes
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_VALUE_DATA_BYTES, MIN_PROPOSAL_BYTES
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG
from sparkchain.identifiers.tx import tx_id, value
from sparkchain.node.commit import Committer
from sparkchain.node.config import ConsensusConfig
from sparkchain.node.driver import ConsensusDriver
from sparkchain.node.durable import DurableRecord
from sparkchain.node.events import CommitBus
from sparkchain.node.ledger import Ledger
from sparkchain.node.mempool import Mempool, MempoolLimits
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import GENESIS_TIME_MS, TxMaker, key, make_test_genesis

pytestmark = pytest.mark.virtual_clock

START_MS = GENESIS_TIME_MS + 60_000


# ---- an in-process network of nodes ----


class FakeLink:
    """Our end of a link to `remote`: what the driver sees of a PeerLink."""

    def __init__(self, owner: Node, remote: Node) -> None:
        self.owner = owner
        self.remote = remote
        self.key = remote.key.public_key
        self.observer = False
        self.height = remote.ledger.height  # as the handshake would say

    def send(self, message: peer_pb2.PeerMessage) -> None:
        self.owner.sent[message.WhichOneof("kind") or "?"] += 1
        asyncio.get_running_loop().call_soon(self.remote.deliver, self.owner, message)


class Node:
    """One validator: ledger, mempool, commit bus, driver, and its links (a PeerNetwork's
    `links()`, `broadcast()` and `announce_height()`)."""

    def __init__(
        self,
        number: int,
        home: Path,
        genesis: Any,
        loop: asyncio.AbstractEventLoop,
        relay: bool,
        config: ConsensusConfig,
    ) -> None:
        self.name = f"n{number}"
        self.key = key(f"validator{number}")
        self.ledger = Ledger.open(home / "ledger", genesis)
        self.clock_ms = clock = lambda: START_MS + int(loop.time() * 1000)
        self.bus = CommitBus()
        self.mempool = Mempool(self.ledger, MempoolLimits(), None, bus=self.bus, clock_ms=clock)
        self.committer = Committer(self.ledger, self.mempool, self.bus)
        self.peers: dict[str, FakeLink] = {}
        self.heard_from: Counter[str] = Counter()  # consensus messages, by sender name
        self.sent: Counter[str] = Counter()  # messages written, by kind
        self.driver = ConsensusDriver(
            ledger=self.ledger,
            mempool=self.mempool,
            committer=self.committer,
            network=self,  # type: ignore[arg-type]
            key=self.key,
            config=config,
            last_signed_path=home / "last_signed",
            on_future_height=lambda _height: self.catch_up(),
            clock_ms=clock,
            # without the relay: an interval longer than any test runs
            relay_interval_ms=2000 if relay else 10**9,
        )
        self.committer.on_commit.append(lambda pending: self.announce_height(pending.height))

    # ---- the PeerNetwork the driver sees ----

    def links(self) -> list[FakeLink]:
        return list(self.peers.values())

    def broadcast(self, message: peer_pb2.PeerMessage) -> None:
        for link in self.peers.values():
            link.send(message)

    def flush_gossip(self) -> None:
        pass  # txs reach the mempools directly in these tests

    def announce_height(self, height: int) -> None:
        for link in self.peers.values():
            their_link = link.remote.peers[self.name]
            asyncio.get_running_loop().call_soon(link.remote.peer_height, their_link, height)

    # ---- what node/runtime.py does with peer events ----

    def deliver(self, sender: Node, message: peer_pb2.PeerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "proposal":
            self.driver.on_proposal(message.proposal)
        elif kind == "vote":
            self.driver.on_vote(message.vote)
        self.heard_from[sender.name] += 1

    def peer_height(self, link: FakeLink, height: int) -> None:
        link.height = height
        if height > self.ledger.height:
            self.catch_up()

    def catch_up(self) -> None:
        """Block sync, reduced to copying committed blocks from the peers' ledgers."""
        before = self.ledger.height
        for link in self.peers.values():
            source = link.remote.ledger
            while source.height > self.ledger.height:
                _, raw, certificate = source.get_block(self.ledger.height + 1)
                assert certificate is not None
                self.committer.commit(self.ledger.validate_block(raw), certificate)
        if self.ledger.height > before:
            self.driver.caught_up(self.ledger.height)


class Line:
    """Three validators in a line, n1 - n2 - n3: n1 and n3 have no link."""

    def __init__(
        self, tmp_path: Path, loop: asyncio.AbstractEventLoop, relay: bool = True, **config: Any
    ) -> None:
        genesis = make_test_genesis(validators=3)
        consensus = ConsensusConfig(**{"empty_block_interval_ms": 3000, **config})
        self.nodes = [
            Node(i, tmp_path / f"n{i}", genesis, loop, relay, consensus) for i in (1, 2, 3)
        ]
        first, middle, last = self.nodes
        for a, b in ((first, middle), (middle, last)):
            a.peers[b.name] = FakeLink(a, b)
            b.peers[a.name] = FakeLink(b, a)

    def heights(self) -> list[int]:
        return [node.ledger.height for node in self.nodes]

    async def run_until(self, predicate: Callable[[], bool], virtual_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + virtual_s
        while not predicate():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def close(self) -> None:
        for node in self.nodes:
            await node.driver.close()
        for node in self.nodes:
            node.ledger.close()


def register(node: Node, seed: int, name: str):  # type: ignore[no-untyped-def]
    maker = TxMaker(node.ledger.chain_id, key("acme"), seed)
    return maker.register(f"88/{name}", [value(1, "URL", "https://e.x")], now_ms=node.clock_ms())


# ---- tests ----


async def test_the_ends_of_a_line_commit_only_through_the_relay(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop)
    first, middle, last = line.nodes
    for node in line.nodes:
        node.driver.start()
    try:
        tx = register(first, 1, "LINE")
        await first.mempool.add(tx)
        for node in (middle, last):  # as gossip would
            await node.mempool.add_from_peer([tx], "n1")
        assert await line.run_until(
            lambda: (
                all(n.bus.committed(tx_id(tx)) for n in line.nodes) and min(line.heights()) >= 3
            ),
            virtual_s=300,
        )
        assert "n3" not in first.heard_from and "n1" not in last.heard_from
        assert middle.driver.relayed > 0
        # every node committed the same blocks, the tx among them
        assert len({node.ledger.get_block(3)[1] for node in line.nodes}) == 1
        for node in line.nodes:
            assert node.ledger.get_tx(tx_id(tx))[1] >= 1
    finally:
        await line.close()


async def test_without_the_relay_the_same_line_never_commits(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop, relay=False)
    first, middle, _ = line.nodes
    for node in line.nodes:
        node.driver.start()
    try:
        await first.mempool.add(register(first, 1, "LINE"))
        assert not await line.run_until(lambda: max(line.heights()) >= 1, virtual_s=120)
        assert middle.driver.relayed == 0
        assert middle.driver._core is not None and middle.driver._core.round > 3
    finally:
        await line.close()


async def test_a_stuck_peer_is_sent_each_message_once_and_ours_again(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop, relay=False)
    middle = line.nodes[1]
    for node in line.nodes:
        node.driver.start()
    try:
        await line.run_until(lambda: False, virtual_s=1.5)  # round 0 runs, nothing commits
        driver = middle.driver
        core = driver._core
        assert core is not None
        everything = core.height_messages()
        own = core.own_messages()
        signers = {m.validator if isinstance(m, Vote) else m.proposer for m in everything}
        assert signers == {n.key.public_key for n in line.nodes}  # others' too
        assert driver.relay_tick() == 0  # first look: no interval without progress yet
        assert driver.relay_tick() == 2 * len(everything)  # both ends of the line
        assert driver.relay_tick() == 2 * len(own)  # then only our own latest again
        assert driver.relay_tick() == 2 * len(own)
        assert driver.relay_tick() == 2 * len(own)
        assert driver.relay_tick() == 2 * len(everything)  # every fifth: all again
        # a peer that moves on is left alone until it stays put for an interval
        middle.peers["n3"].height = 5
        assert driver.relay_tick() == len(own)
        assert driver.relay_tick() == len(own)
    finally:
        await line.close()


async def test_a_reconnected_peer_at_our_height_gets_the_whole_height(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop, relay=False)
    first, middle, last = line.nodes
    for node in line.nodes:
        node.driver.start()
    try:
        await line.run_until(lambda: False, virtual_s=1.5)
        core = middle.driver._core
        assert core is not None
        sent: list[peer_pb2.PeerMessage] = []
        link = FakeLink(middle, last)
        link.send = sent.append  # type: ignore[method-assign]
        middle.driver.on_link_up(link)  # type: ignore[arg-type]
        keys = {message_key(_from_wire(m)) for m in sent}
        assert keys == {message_key(m) for m in core.height_messages()}
        assert any(
            isinstance(_from_wire(m), Vote) and _from_wire(m).validator == first.key.public_key
            for m in sent
        )
        sent.clear()
        link.height = 7  # a peer ahead of us needs blocks, not votes: only our own
        middle.driver.on_link_up(link)  # type: ignore[arg-type]
        assert {message_key(_from_wire(m)) for m in sent} == {
            message_key(m) for m in core.own_messages()
        }
    finally:
        await line.close()


async def test_a_proposal_waits_for_the_signature_checks_in_flight_but_not_long(
    tmp_path: Path,
) -> None:
    def proposals(node: Node) -> list[Proposal]:
        core = node.driver._core
        assert core is not None
        return [m for m in core.height_messages() if isinstance(m, Proposal)]

    loop = asyncio.get_running_loop()
    line = Line(tmp_path, loop, relay=False)
    first, _, last = line.nodes  # n2 proposes height 1, round 0
    pool: asyncio.Future[None] = loop.create_future()
    first.mempool.verifications_in_flight = lambda: [pool]  # type: ignore[method-assign]
    never: asyncio.Future[None] = loop.create_future()
    last.mempool.verifications_in_flight = lambda: [never]  # type: ignore[method-assign]
    for node in line.nodes:
        node.driver.start()
    try:
        await asyncio.sleep(0.01)
        assert proposals(first) == [] and proposals(last) == []
        pool.set_result(None)
        await asyncio.sleep(0.01)
        assert len(proposals(first)) == 1 and proposals(last) == []
        await asyncio.sleep(0.3)  # a pool that never finishes holds it back only so long
        assert len(proposals(last)) == 1
    finally:
        await line.close()


def _from_wire(message: peer_pb2.PeerMessage) -> Proposal | Vote:
    if message.WhichOneof("kind") == "proposal":
        return wire.proposal_from_proto(message.proposal)
    return wire.vote_from_proto(message.vote)


# ---- fail-stop signing (DESIGN §6) ----


def _consensus_sent(node: Node) -> int:
    return node.sent["proposal"] + node.sent["vote"]


async def test_a_record_that_cannot_be_written_stops_signing_before_anything_leaves(
    tmp_path: Path,
) -> None:
    line = Line(tmp_path, asyncio.get_running_loop())
    middle = line.nodes[1]  # the proposer of height 1, round 0
    sent_when_stopped: list[int] = []
    middle.driver._on_fail_stop = lambda _reason: sent_when_stopped.append(_consensus_sent(middle))
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    for node in line.nodes:
        node.driver.start()  # signs (and persists, then sends) its proposal
    # from now on writes raise
    middle.driver._last_signed_file = DurableRecord(blocker / "last_signed")
    try:
        await line.run_until(lambda: False, virtual_s=20)
        assert middle.driver.halted is not None and "last-signed" in middle.driver.halted
        assert len(sent_when_stopped) == 1
        # the vote whose record failed, and everything after, never left
        assert _consensus_sent(middle) == sent_when_stopped[0]
        assert middle.driver.relay_tick() == 0  # and the relay has nothing to send
        assert max(line.heights()) == 0  # n = 3 needs all three
    finally:
        await line.close()


async def test_a_handler_that_fails_half_way_stops_signing(tmp_path: Path) -> None:
    line = Line(tmp_path, asyncio.get_running_loop())
    first = line.nodes[0]
    stops: list[str] = []
    first.driver._on_fail_stop = stops.append

    def broken_validate(height: int, value: bytes) -> bool:
        raise RuntimeError("the ledger went away")

    first.driver.app.validate = broken_validate  # type: ignore[method-assign]
    for node in line.nodes:
        node.driver.start()
    try:
        await line.run_until(lambda: first.driver.halted is not None, virtual_s=10)
        assert first.driver.halted is not None and "the ledger went away" in first.driver.halted
        sent_at_halt = _consensus_sent(first)
        await line.run_until(lambda: False, virtual_s=20)
        assert _consensus_sent(first) == sent_at_halt  # nothing more leaves it
        assert len(stops) == 1
    finally:
        await line.close()


async def test_only_a_validators_signed_message_of_a_later_height_steers_block_sync(
    tmp_path: Path,
) -> None:
    line = Line(tmp_path, asyncio.get_running_loop(), relay=False)
    first, middle, _ = line.nodes
    asked: list[int] = []
    first.driver._on_future_height = asked.append
    first.driver.start()
    try:
        prefix = chain_prefix(first.ledger.chain_id)
        sign_bytes = vote_sign_bytes(prefix, VoteType.PREVOTE, 9, 0, b"h" * 32)

        def vote(signer: Any, signature: bytes | None = None) -> Vote:
            signed = signature or Ed25519Signer(signer).sign(VOTE_TAG, sign_bytes)
            return Vote(VoteType.PREVOTE, 9, 0, b"h" * 32, signer.public_key, signed)

        outsider = key("outsider")
        for forged in (vote(outsider), vote(middle.key, b"\x01" * 64)):
            first.driver.on_vote(wire.vote_to_proto(forged))
        assert asked == []  # neither an outsider nor a bad signature moves our sync
        first.driver.on_vote(wire.vote_to_proto(vote(middle.key)))
        assert asked == [8]  # the validator committed height 8
    finally:
        await line.close()


def _proposal_with_value(node: Node, height: int, block: bytes) -> pb.Proposal:
    """A proposal signed by the proposer of (height, round 0), carrying `block` as its value.
    The signature covers the block hash, not the block: anyone relaying a genuine proposal
    could swap the block for garbage."""
    core = node.driver._core
    assert core is not None
    proposer = core.validators[height % core.n]
    signer = Ed25519Signer(next(k for k in _VALIDATOR_KEYS if k.public_key == proposer))
    block_hash = bytes(32)
    sign_bytes = proposal_sign_bytes(chain_prefix(node.ledger.chain_id), height, 0, -1, block_hash)
    return pb.Proposal(
        height=height,
        round=0,
        valid_round=-1,
        block_hash=block_hash,
        block=block,
        proposer=proposer,
        signature=signer.sign(PROPOSAL_TAG, sign_bytes),
    )


_VALIDATOR_KEYS = [key(f"validator{number}") for number in (1, 2, 3)]


async def test_a_signed_proposal_whose_block_does_not_decode_is_refused_and_signing_goes_on(
    tmp_path: Path,
) -> None:
    line = Line(tmp_path, asyncio.get_running_loop(), relay=False)
    first = line.nodes[0]
    first.driver.start()
    try:
        for height in (1, 5):  # this height (the core), a later one (the sync trigger)
            with pytest.raises(SparkError) as caught:
                first.driver.on_proposal(_proposal_with_value(first, height, b"\xff" * 64))
            assert caught.value.code is ErrorCode.INVALID_BLOCK
            assert "does not decode" in caught.value.message
        assert first.driver.halted is None and first.driver._core is not None
    finally:
        await line.close()


@pytest.mark.parametrize(
    ("failure", "halts"),
    [(lambda: RuntimeError("a bug the block hit"), False), (lambda: OSError(5, "EIO"), True)],
    ids=["bug", "disk"],
)
async def test_a_block_that_breaks_our_rules_is_refused_but_a_broken_disk_stops_us(
    tmp_path: Path, failure: Callable[[], Exception], halts: bool
) -> None:
    line = Line(tmp_path, asyncio.get_running_loop())
    first = line.nodes[0]  # n2 proposes height 1: n1 validates its block

    def validate_block(block_bytes: bytes) -> Any:
        raise failure()

    first.ledger.validate_block = validate_block  # type: ignore[method-assign]
    for node in line.nodes:
        node.driver.start()
    try:
        await line.run_until(lambda: first.driver.halted is not None, virtual_s=10)
        assert (first.driver.halted is not None) is halts
        if not halts:  # it prevoted nil and went on voting, round after round
            assert first.sent["vote"] >= 4
    finally:
        await line.close()


# ---- a tx larger than the proposer's budget, or than its blocks (issue 10, finding 1) ----


def big_batch(node: Node, seed: int, items: int) -> Any:
    """A RegisterBatch of `items` identifiers with 3 values of 16 KB each (~49 KB per item)."""
    maker = TxMaker(node.ledger.chain_id, key("acme"), seed)
    values = [value(i, "DATA", "x" * MAX_VALUE_DATA_BYTES) for i in (1, 2, 3)]
    return maker.register_batch(
        "88", [(f"BIG-{i}", values) for i in range(items)], now_ms=node.clock_ms()
    )


async def test_a_tx_larger_than_the_learned_budget_commits_and_no_empty_blocks_spin(
    tmp_path: Path,
) -> None:
    line = Line(tmp_path, asyncio.get_running_loop())
    for node in line.nodes:
        # a slow machine: the proposers learnt to build only MIN_PROPOSAL_BYTES
        node.driver.app._build_ms_per_byte = 1.0
        node.driver.start()
    try:
        big = big_batch(line.nodes[0], 1, items=6)  # ~300 KB
        assert big.ByteSize() > MIN_PROPOSAL_BYTES
        for node in line.nodes:
            await node.mempool.add(big)
        assert await line.run_until(
            lambda: all(n.bus.committed(tx_id(big)) for n in line.nodes), virtual_s=60
        )
        # once it committed, the idle chain waits for the empty-block interval
        heights = line.heights()
        await line.run_until(lambda: False, virtual_s=2)
        assert line.heights() == heights
        assert all(len(node.mempool) == 0 for node in line.nodes)
    finally:
        await line.close()


async def test_a_tx_no_block_can_take_does_not_start_heights(tmp_path: Path) -> None:
    line = Line(tmp_path, asyncio.get_running_loop(), max_block_bytes=MIN_PROPOSAL_BYTES)
    first, _, last = line.nodes
    first.peers[last.name] = FakeLink(first, last)  # a triangle: a height takes ms
    last.peers[first.name] = FakeLink(last, first)
    for node in line.nodes:
        node.driver.start()
    try:
        assert await line.run_until(lambda: min(line.heights()) >= 1, virtual_s=10)
        big = big_batch(line.nodes[0], 1, items=6)  # larger than these nodes' blocks
        for node in line.nodes:  # (their mempools were told of a larger block)
            await node.mempool.add(big)
        # only the empty-block interval (3 s) moves the chain, not the tx it cannot take
        assert await line.run_until(lambda: min(line.heights()) >= 2, virtual_s=10)
        heights = line.heights()
        await line.run_until(lambda: False, virtual_s=2)
        assert max(line.heights()) <= max(heights) + 1
        assert len(line.nodes[0].mempool) == 1
    finally:
        await line.close()
