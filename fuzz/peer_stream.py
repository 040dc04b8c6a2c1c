"""The peer-stream target: a sequence of PeerMessages, as one peer link delivers them, into
the checks a node runs and a validator's consensus core.

Input framing: repeated [length: u16 big-endian][PeerMessage bytes]. A frame that does not
parse ends the stream (gRPC's deserializer would end it there). The first handshake frame is
checked as a node checks the dialer's hello and its answer (node/peer_handshake.py).
Proposals and votes go the way node/peers.py and node/driver.py send them: the proposal's
value must decode as a block (BlockApplication.check_value), messages of decided heights are
dropped, messages from beyond the next height only ask `is_signed_by_a_validator`, the rest
reach a fresh core of validator 4 (ConsensusCore.on_proposal / on_vote).

Signatures: votes and proposals are checked by a verifier that accepts every signature.
A byzantine validator can sign any message, so whatever the core does with a message that
names a validator is reachable by one; with real signatures a fuzzer would never get past
them. Timers the core schedules are fired at the end, in order, and every last-signed
record it asks to persist must read back (LastSigned.from_bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from google.protobuf.message import DecodeError

from fuzz.world import NEXT_HEIGHT, world
from sparkchain.consensus import wire
from sparkchain.consensus.app import TimeoutConfig
from sparkchain.consensus.core import ConsensusCore
from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.consensus.messages import (
    Commit,
    Effect,
    Message,
    PersistLastSigned,
    Proposal,
    ScheduleTimeout,
    Timeout,
)
from sparkchain.consensus.sim.fakecrypto import FakeSigner
from sparkchain.identifiers.errors import SparkError
from sparkchain.identifiers.tx import check_signed_tx
from sparkchain.ledger.blocks import decode_block
from sparkchain.node.peer_handshake import LocalPeer, check_admissible, check_answer
from sparkchain.proto import peer_pb2
from tests.helpers.chain import key

_FRAME = struct.Struct(">H")
MAX_TIMEOUTS_FIRED = 32
OUR_NONCE = bytes(range(32))


def frames(data: bytes) -> Iterator[bytes]:
    at = 0
    while at + _FRAME.size <= len(data):
        (length,) = _FRAME.unpack_from(data, at)
        at += _FRAME.size
        yield data[at : at + length]
        at += length


def frame(message: peer_pb2.PeerMessage) -> bytes:
    raw = message.SerializeToString()
    return _FRAME.pack(len(raw)) + raw


class _AcceptAll:
    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        return True


class _BlockApp:
    """The node's application as the core sees it: values are blocks, hashed by header."""

    def propose(self, height: int, round: int) -> bytes:
        return world().next_block

    def validate(self, height: int, value: bytes) -> bool:
        # as BlockApplication.validate: a block that breaks a rule is refused, not an error
        if height != NEXT_HEIGHT:
            return False
        try:
            world().ledger.validate_block(value)
        except SparkError:
            return False
        return True

    def value_hash(self, value: bytes) -> bytes:
        return decode_block(value).block_hash


class FailStop(Exception):
    """A core handler raised: the node's driver would stop signing for good (fail-stop),
    so a peer's message that does this is a crash, typed or not."""


class _Harness:
    def __init__(self) -> None:
        w = world()
        self.validators = w.genesis.validator_keys
        self.me = key("validator4")
        self.core = ConsensusCore(
            w.genesis.chain_id,
            self.validators,
            FakeSigner(self.me.public_key),
            _BlockApp(),
            TimeoutConfig(),
            verifier=_AcceptAll(),
        )
        self.decided = NEXT_HEIGHT - 1
        self.timeouts: list[Timeout] = []
        self.persisted: list[bytes] = []  # every last-signed record, in order
        self.local = LocalPeer(w.genesis.chain_id, self.me, False, frozenset(self.validators))
        self.handshaken = False
        self.effects(self.core.start(NEXT_HEIGHT))

    def effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, PersistLastSigned):
                LastSigned.from_bytes(effect.record)
                self.persisted.append(effect.record)
            elif isinstance(effect, ScheduleTimeout):
                self.timeouts.append(effect.timeout)
            elif isinstance(effect, Commit):
                self.decided = effect.height
                self.timeouts.clear()
                self.effects(self.core.start(effect.height + 1))

    def message(self, message: peer_pb2.PeerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "handshake" and not self.handshaken:
            self.handshaken = True
            check_admissible(self.local, message.handshake)
            check_answer(self.local, message.handshake, OUR_NONCE)
        elif kind == "proposal":
            proposal = wire.proposal_from_proto(message.proposal)
            decode_block(proposal.value)
            self.receive(proposal)
        elif kind == "vote":
            self.receive(wire.vote_from_proto(message.vote))
        elif kind == "txs":
            for signed in message.txs.txs[:16]:
                check_signed_tx(signed, world().genesis.chain_id)

    def receive(self, message: Message) -> None:
        core = self.core
        if message.height <= self.decided:
            return
        if message.height > core.height + 1:
            core.is_signed_by_a_validator(message)
            return
        try:
            effects = (
                core.on_proposal(message)
                if isinstance(message, Proposal)
                else core.on_vote(message)
            )
        except SparkError as exc:
            raise FailStop(f"the core refused a peer's message by raising: {exc}") from exc
        self.effects(effects)

    def fire_timeouts(self) -> None:
        for _ in range(MAX_TIMEOUTS_FIRED):
            if not self.timeouts:
                return
            timeout = self.timeouts.pop(0)
            if timeout.height == self.core.height:
                try:
                    effects = self.core.on_timeout(timeout)
                except SparkError as exc:
                    raise FailStop(f"the core failed on its own timer: {exc}") from exc
                self.effects(effects)


def peer_stream(data: bytes) -> None:
    harness = _Harness()
    for raw in frames(data):
        try:
            message = peer_pb2.PeerMessage.FromString(raw)
        except DecodeError:
            break
        try:
            harness.message(message)
        except SparkError:
            continue  # the node logs a refused message and keeps the link
    harness.fire_timeouts()
