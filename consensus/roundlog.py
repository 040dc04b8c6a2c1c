"""The message log of one round of one height (paper: the messages a process has received),
with running tallies so that every "upon 2f+1 ..." test is a dictionary lookup."""

from __future__ import annotations

from sparkchain.consensus.messages import NIL, Proposal, Vote, VoteType


class RoundLog:
    __slots__ = (
        "commit_hash",
        "extras",
        "first_proposal",
        "line36_done",
        "polka",
        "precommit_tally",
        "precommit_timeout_set",
        "precommits",
        "prevote_tally",
        "prevote_timeout_set",
        "prevotes",
        "proposals_by_hash",
        "round",
        "senders",
    )

    def __init__(self, round: int) -> None:
        self.round = round
        # the first proposal from the round's proposer: the one lines 22/28 act on
        self.first_proposal: Proposal | None = None
        # every signed proposal of the round, by block hash (bounded): lines 36/49 look up
        # the value a quorum names here, whichever of a proposer's proposals came first
        self.proposals_by_hash: dict[bytes, Proposal] = {}
        self.prevotes: dict[bytes, Vote] = {}  # by validator: the first vote counts
        self.precommits: dict[bytes, Vote] = {}
        # a validator's further votes of one step, for other values (evidence of
        # equivocation); they count towards their value, so that every correct process
        # that receives the same messages sees the same quorums (the paper counts messages)
        self.extras: dict[tuple[int, bytes, bytes], Vote] = {}  # (type, validator, hash)
        self.prevote_tally: dict[bytes, int] = {}  # by block hash, NIL included
        self.precommit_tally: dict[bytes, int] = {}
        self.senders: set[bytes] = set()  # distinct validators heard from (line 55)
        # A non-nil hash with a quorum of prevotes, and one with a quorum of precommits. One
        # slot each: with at most f faulty validators no two values reach a quorum in one
        # round and step (two quorums share f+1 validators, so a correct one, which votes
        # once per step). With more than f, a second value's quorum is not recorded, but
        # safety is lost then anyway; the simulator's checker reports it.
        self.polka: bytes | None = None
        self.commit_hash: bytes | None = None
        self.prevote_timeout_set = False  # line 34 "for the first time"
        self.precommit_timeout_set = False  # line 47 "for the first time"
        self.line36_done = False  # line 36 "for the first time"

    @property
    def prevote_total(self) -> int:
        """Distinct validators' first prevotes (line 34 counts PREVOTE(h, r, *))."""
        return len(self.prevotes)

    @property
    def precommit_total(self) -> int:
        return len(self.precommits)

    def add_prevote(self, vote: Vote, quorum: int) -> None:
        self.prevotes[vote.validator] = vote
        self.senders.add(vote.validator)
        self.count_prevote(vote.block_hash, quorum)

    def count_prevote(self, block_hash: bytes, quorum: int) -> None:
        count = self.prevote_tally.get(block_hash, 0) + 1
        self.prevote_tally[block_hash] = count
        if count == quorum and block_hash != NIL:
            self.polka = block_hash

    def add_precommit(self, vote: Vote, quorum: int) -> None:
        self.precommits[vote.validator] = vote
        self.senders.add(vote.validator)
        self.count_precommit(vote.block_hash, quorum)

    def count_precommit(self, block_hash: bytes, quorum: int) -> None:
        count = self.precommit_tally.get(block_hash, 0) + 1
        self.precommit_tally[block_hash] = count
        if count == quorum and block_hash != NIL:
            self.commit_hash = block_hash

    def add_extra(self, vote: Vote, quorum: int) -> None:
        self.extras[(int(vote.type), vote.validator, vote.block_hash)] = vote
        if vote.type is VoteType.PREVOTE:
            self.count_prevote(vote.block_hash, quorum)
        else:
            self.count_precommit(vote.block_hash, quorum)

    def nil_prevotes(self) -> int:
        return self.prevote_tally.get(NIL, 0)

    def messages(self) -> list[Proposal | Vote]:
        found: list[Proposal | Vote] = list(self.proposals_by_hash.values())
        found.extend(self.prevotes.values())
        found.extend(self.precommits.values())
        found.extend(self.extras.values())
        return found

    def prevotes_for(self, block_hash: bytes) -> list[Vote]:
        found = [v for v in self.prevotes.values() if v.block_hash == block_hash]
        found.extend(
            v
            for v in self.extras.values()
            if v.type is VoteType.PREVOTE and v.block_hash == block_hash
        )
        return found

    def precommits_for(self, block_hash: bytes) -> list[Vote]:
        found = [v for v in self.precommits.values() if v.block_hash == block_hash]
        found.extend(
            v
            for v in self.extras.values()
            if v.type is VoteType.PRECOMMIT and v.block_hash == block_hash
        )
        return found
