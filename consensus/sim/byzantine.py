"""Byzantine validators: an honest core whose outgoing messages a strategy rewrites.

Each strategy sees every message its core broadcasts and decides who gets what; it may sign
extra messages with its own key (never with another's), and it sees what its node receives
(`observe`), so it can craft votes for values that were really proposed. Twins and amnesia
are not here: the runner builds those from honest nodes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sparkchain.consensus.crypto import Signer
from sparkchain.consensus.messages import NIL, Message, Proposal, Vote, VoteType
from sparkchain.consensus.signbytes import proposal_sign_bytes, vote_sign_bytes
from sparkchain.consensus.sim.chain import value_hash
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG

Sends = list[tuple[int, Message]]


def sign_vote(
    signer: Signer, prefix: bytes, kind: VoteType, height: int, round: int, block_hash: bytes
) -> Vote:
    message = vote_sign_bytes(prefix, kind, height, round, block_hash)
    signature = signer.sign(VOTE_TAG, message)
    return Vote(kind, height, round, block_hash, signer.public_key, signature)


def sign_proposal(
    signer: Signer, prefix: bytes, like: Proposal, value: bytes, valid_round: int | None = None
) -> Proposal:
    block_hash = value_hash(value)
    valid_round = like.valid_round if valid_round is None else valid_round
    message = proposal_sign_bytes(prefix, like.height, like.round, valid_round, block_hash)
    signature = signer.sign(PROPOSAL_TAG, message)
    return Proposal(
        like.height, like.round, valid_round, block_hash, value, signer.public_key, signature
    )


class Strategy:
    """Honest behaviour: everything to everyone. Subclasses rewrite `outbound`."""

    name = "honest"
    relays = True  # answers gossip and sync requests

    def __init__(self, signer: Signer, prefix: bytes, rng: random.Random) -> None:
        self.signer = signer
        self.prefix = prefix
        self.rng = rng

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        return [(peer, message) for peer in peers]

    def observe(self, message: Message) -> None:
        """A message its node received (before its core handles it)."""

    def _halves(self, peers: Sequence[int]) -> tuple[list[int], list[int]]:
        shuffled = list(peers)
        self.rng.shuffle(shuffled)
        cut = len(shuffled) // 2
        return shuffled[:cut], shuffled[cut:]

    def _vote(self, like: Vote, block_hash: bytes) -> Vote:
        return sign_vote(self.signer, self.prefix, like.type, like.height, like.round, block_hash)


class Silent(Strategy):
    name = "silent"
    relays = False

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        return []


class InvalidProposer(Strategy):
    """Honest, but its application proposes invalid values (set up by the runner)."""

    name = "invalid-proposer"


class UnknownVoter(Strategy):
    name = "unknown-voter"

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        if isinstance(message, Proposal):
            return [(peer, message) for peer in peers]
        fake = self._vote(message, self.rng.randbytes(32))
        return [(peer, fake) for peer in peers]


class DoubleVoter(Strategy):
    name = "double-voter"

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        if isinstance(message, Proposal):
            return [(peer, message) for peer in peers]
        other = NIL if message.block_hash != NIL else self.rng.randbytes(32)
        second = self._vote(message, other)
        first_half, second_half = self._halves(peers)
        sends: Sends = [(p, message) for p in first_half]
        return sends + [(p, second) for p in second_half]


class EquivocatingProposer(Strategy):
    """Two valid values per proposal, one to each half; its votes follow the split."""

    name = "equivocating-proposer"

    def __init__(self, signer: Signer, prefix: bytes, rng: random.Random) -> None:
        super().__init__(signer, prefix, rng)
        # (height, round) -> (original hash, twin hash, peers that got the twin)
        self._split: dict[tuple[int, int], tuple[bytes, bytes, frozenset[int]]] = {}

    def _groups(self, peers: Sequence[int]) -> tuple[list[int], list[int]]:
        return self._halves(peers)

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        at = (message.height, message.round)
        if isinstance(message, Proposal):
            twin = sign_proposal(self.signer, self.prefix, message, message.value + b"|twin")
            first, second = self._groups(peers)
            self._split[at] = (message.block_hash, twin.block_hash, frozenset(second))
            sends: Sends = [(p, message) for p in first]
            return sends + [(p, twin) for p in second]
        split = self._split.get(at)
        if split is None or message.block_hash != split[0]:
            return [(peer, message) for peer in peers]
        other = self._vote(message, split[1])
        return [(p, other if p in split[2] else message) for p in peers]


class Coalition(EquivocatingProposer):
    """The members share one split of the network into A and B. They try to bring A to
    lock and commit a value while keeping B away from it: to A they vote for the value
    of the round, to B against it, and as proposers they give A and B different values."""

    name = "coalition"

    def __init__(
        self,
        signer: Signer,
        prefix: bytes,
        rng: random.Random,
        group_b: frozenset[int],
        known_value: dict[tuple[int, int], bytes],
    ) -> None:
        super().__init__(signer, prefix, rng)
        self._group_b = group_b
        self._known = known_value  # (height, round) -> a proposed hash seen (shared)

    def _groups(self, peers: Sequence[int]) -> tuple[list[int], list[int]]:
        return (
            [p for p in peers if p not in self._group_b],
            [p for p in peers if p in self._group_b],
        )

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        at = (message.height, message.round)
        if isinstance(message, Proposal):
            self._known.setdefault(at, message.block_hash)
            return super().outbound(message, peers)
        split = self._split.get(at)
        target = message.block_hash or self._known.get(at, NIL)
        against = split[1] if split is not None and target == split[0] else NIL
        for_a = message if target == message.block_hash else self._vote(message, target)
        for_b = message if against == message.block_hash else self._vote(message, against)
        return [(p, for_b if p in self._group_b else for_a) for p in peers]


class SplitVoter(Strategy):
    """Conflicting prevotes and precommits for values really proposed in the round (or nil):
    each half of its peers gets a vote for a different one, so both votes can count."""

    name = "split-voter"

    def __init__(self, signer: Signer, prefix: bytes, rng: random.Random) -> None:
        super().__init__(signer, prefix, rng)
        self._proposed: dict[tuple[int, int], list[bytes]] = {}

    def observe(self, message: Message) -> None:
        if isinstance(message, Proposal):
            seen = self._proposed.setdefault((message.height, message.round), [])
            if message.block_hash not in seen:
                seen.append(message.block_hash)

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        if isinstance(message, Proposal):
            self.observe(message)
            return [(peer, message) for peer in peers]
        choices = [NIL, *self._proposed.get((message.height, message.round), ())]
        others = [h for h in choices if h != message.block_hash]
        if not others:  # a nil vote in a round whose proposal it has not seen
            return [(peer, message) for peer in peers]
        second = self._vote(message, self.rng.choice(others))
        first_half, second_half = self._halves(peers)
        sends: Sends = [(p, message) for p in first_half]
        return sends + [(p, second) for p in second_half]


class RoundHopper(Strategy):
    """Honest votes, plus votes of the same step for past and future rounds (for the same
    value or nil), each to a random subset of its peers."""

    name = "round-hopper"

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        sends: Sends = [(peer, message) for peer in peers]
        if isinstance(message, Proposal):
            return sends
        for offset in (-2, -1, 1, 2, 5):
            round_ = message.round + offset
            if round_ < 0:
                continue
            block_hash = self.rng.choice((message.block_hash, NIL))
            hop = sign_vote(
                self.signer, self.prefix, message.type, message.height, round_, block_hash
            )
            sends += [(p, hop) for p in peers if self.rng.random() < 0.5]
        return sends


class ValidRoundLiar(Strategy):
    """As proposer, signs its proposal with an arbitrary valid round (-1 .. round-1) for a
    random half of its peers; the other half gets the honest one."""

    name = "valid-round-liar"

    def outbound(self, message: Message, peers: Sequence[int]) -> Sends:
        if not isinstance(message, Proposal) or message.round == 0:
            return [(peer, message) for peer in peers]
        lie = self.rng.randint(-1, message.round - 1)
        if lie == message.valid_round:
            return [(peer, message) for peer in peers]
        liar = sign_proposal(self.signer, self.prefix, message, message.value, lie)
        first_half, second_half = self._halves(peers)
        sends: Sends = [(p, message) for p in first_half]
        return sends + [(p, liar) for p in second_half]


SIMPLE_STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        Strategy,
        Silent,
        InvalidProposer,
        UnknownVoter,
        DoubleVoter,
        EquivocatingProposer,
        SplitVoter,
        RoundHopper,
        ValidRoundLiar,
    )
}
