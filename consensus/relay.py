"""The relay: which consensus messages of our height each validator peer is sent again, and
when (sans-I/O). The node's driver and the simulator both run this one module, so every
simulated seed exercises the gossip that production runs.

The paper's liveness argument assumes that every message a correct validator received
eventually reaches every other correct validator. First broadcasts go out once; the relay
repairs what a lossy link, a partition or a restart lost:
- when a link to a validator comes up, a peer working on our height gets every message of
  the height we hold (it may have restarted and lost them), any other peer our own latest
  messages;
- every relay interval, a peer that made no progress since the last interval (same
  committed height, our core on the same height, same connection) and works on our height
  is sent the messages of the height it was not sent yet, and our own latest messages
  again; every RELAY_FULL_RESEND_INTERVALS stuck intervals, all of them again (a message
  may have been lost on the way);
- every stuck interval each peer is told our committed height again: a height announced at
  commit may have been lost, and a stale view of a peer's height (it seems behind, or at
  our height when it is ahead) would stop the relay from repairing it and it from syncing
  (the simulator found both). A peer that is behind syncs from us first; one that is
  ahead is left to block sync.
A peer is "at our height" when its last committed height is ours minus one. The caller
learns peer heights from handshakes and height announcements, and gives a connection
identity that changes when a link is re-established.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sparkchain.consensus.messages import Message, Vote
from sparkchain.identifiers.limits import RELAY_FULL_RESEND_INTERVALS

MessageKey = tuple[int, int, bytes, bytes]


def message_key(message: Message) -> MessageKey:
    """What tells messages of one height apart: (0 for a proposal or the vote type, round,
    signer, block hash). The signature is left out: a signer signs one message per key."""
    if isinstance(message, Vote):
        return (int(message.type), message.round, message.validator, message.block_hash)
    return (0, message.round, message.proposer, message.block_hash)


class RelaySource(Protocol):
    """The part of the consensus core the relay reads."""

    @property
    def height(self) -> int: ...

    def height_messages(self) -> list[Message]: ...

    def own_messages(self) -> list[Message]: ...


@dataclass(frozen=True, slots=True)
class PeerView:
    """What the caller knows of one validator peer's link now."""

    key: bytes
    connection: Hashable  # changes when the link is re-established
    committed_height: int


@dataclass(frozen=True, slots=True)
class RelayOrder:
    """What to send one peer now: consensus messages of our height, and whether to tell it
    our committed height again."""

    peer: bytes
    messages: list[Message]
    announce_height: bool = False


@dataclass(slots=True)
class _PeerState:
    connection: Hashable
    peer_height: int  # the peer's last committed height when we last looked
    our_height: int  # the height of our core when we last looked
    stuck_intervals: int = 0
    sent: set[MessageKey] = field(default_factory=set)


class Relay:
    __slots__ = ("_peers",)

    def __init__(self) -> None:
        self._peers: dict[bytes, _PeerState] = {}

    def link_up(self, peer: PeerView, core: RelaySource) -> list[Message]:
        """A link to a validator came up (again): what to send it now."""
        state = self._peers[peer.key] = _PeerState(
            peer.connection, peer.committed_height, core.height
        )
        if peer.committed_height + 1 == core.height:
            return self._unsent(state, core.height_messages(), core)
        return core.own_messages()

    def tick(self, peers: Iterable[PeerView], core: RelaySource) -> list[RelayOrder]:
        """One relay interval passed: what to send each peer that needs repair. Peers not
        listed are forgotten (their links are down)."""
        height = core.height
        previous = self._peers
        current: dict[bytes, _PeerState] = {}
        out: list[RelayOrder] = []
        height_messages: list[Message] | None = None
        for peer in peers:
            state = previous.get(peer.key)
            if (
                state is None
                or state.connection != peer.connection
                or state.peer_height != peer.committed_height
                or state.our_height != height
            ):
                # progress (or a new link): look again next interval
                current[peer.key] = _PeerState(peer.connection, peer.committed_height, height)
                continue
            current[peer.key] = state
            state.stuck_intervals += 1
            if peer.committed_height + 1 != height:
                # behind: it syncs from us first (then we relay); ahead: we sync from it
                out.append(RelayOrder(peer.key, [], announce_height=True))
                continue
            if state.stuck_intervals % RELAY_FULL_RESEND_INTERVALS == 0:
                state.sent.clear()
            if height_messages is None:
                height_messages = core.height_messages()
            out.append(RelayOrder(peer.key, self._unsent(state, height_messages, core), True))
        self._peers = current
        return out

    @staticmethod
    def _unsent(state: _PeerState, messages: list[Message], core: RelaySource) -> list[Message]:
        """The messages the peer was not sent yet, and our own latest again."""
        own = {message_key(m) for m in core.own_messages()}
        chosen = []
        for message in messages:
            key = message_key(message)
            if key in state.sent and key not in own:
                continue
            state.sent.add(key)
            chosen.append(message)
        return chosen
