"""Admitting messages: is this really signed by its validator, and does the proposed value
have the hash the proposer signed? Plus the bounded buffer of messages that arrive one
height early. What an admitted message means is the core's business."""

from __future__ import annotations

from sparkchain.consensus.app import Application
from sparkchain.consensus.crypto import Verifier
from sparkchain.consensus.messages import Message, Proposal, Vote
from sparkchain.consensus.signbytes import (
    MAX_BLOCK_HASH_BYTES,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from sparkchain.identifiers.limits import (
    MAX_FUTURE_MESSAGES,
    MAX_FUTURE_MESSAGES_PER_VALIDATOR,
    MAX_FUTURE_PROPOSALS_PER_VALIDATOR,
)
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG


class Authenticator:
    __slots__ = ("_app", "_prefix", "_verifier")

    def __init__(self, chain_prefix: bytes, app: Application, verifier: Verifier) -> None:
        self._prefix = chain_prefix
        self._app = app
        self._verifier = verifier

    def vote(self, vote: Vote) -> bool:
        block_hash = vote.block_hash
        if len(block_hash) > MAX_BLOCK_HASH_BYTES:
            return False
        message = vote_sign_bytes(self._prefix, vote.type, vote.height, vote.round, block_hash)
        return self._verifier.verify(vote.validator, VOTE_TAG, message, vote.signature)

    def proposal(self, proposal: Proposal) -> bool:
        block_hash = proposal.block_hash
        if (
            not block_hash
            or len(block_hash) > MAX_BLOCK_HASH_BYTES
            or not -1 <= proposal.valid_round < proposal.round
        ):
            return False
        message = proposal_sign_bytes(
            self._prefix, proposal.height, proposal.round, proposal.valid_round, block_hash
        )
        if not self._verifier.verify(proposal.proposer, PROPOSAL_TAG, message, proposal.signature):
            return False
        return self._app.value_hash(proposal.value) == block_hash


class NextHeightBuffer:
    """Admitted messages of the next height, bounded per sender (so that one validator
    cannot crowd out the others) and in total. Proposals carry whole blocks, so each sender
    may park only a few of them: the count bound alone would let one validator make every
    correct node hold 16 blocks."""

    __slots__ = ("_messages", "_per_sender", "_proposals_per_sender")

    def __init__(self) -> None:
        # a dict for its order and its membership test: relayed copies of a message are
        # neither verified nor counted again
        self._messages: dict[Message, None] = {}
        self._per_sender: dict[bytes, int] = {}
        self._proposals_per_sender: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def __contains__(self, message: Message) -> bool:
        return message in self._messages

    def has_room(self, message: Message, sender: bytes) -> bool:
        if isinstance(message, Proposal) and (
            self._proposals_per_sender.get(sender, 0) >= MAX_FUTURE_PROPOSALS_PER_VALIDATOR
        ):
            return False
        return (
            self._per_sender.get(sender, 0) < MAX_FUTURE_MESSAGES_PER_VALIDATOR
            and len(self._messages) < MAX_FUTURE_MESSAGES
        )

    def add(self, message: Message, sender: bytes) -> None:
        self._per_sender[sender] = self._per_sender.get(sender, 0) + 1
        if isinstance(message, Proposal):
            self._proposals_per_sender[sender] = self._proposals_per_sender.get(sender, 0) + 1
        self._messages[message] = None

    def take(self, height: int) -> list[Message]:
        """The messages of `height`; the buffer is emptied."""
        found = [m for m in self._messages if m.height == height]
        self._messages = {}
        self._per_sender = {}
        self._proposals_per_sender = {}
        return found
