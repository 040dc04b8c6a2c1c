"""Bounds on what one byzantine validator can make a consensus core keep in memory (it
signs as many proposals and votes as it likes, for rounds and heights ahead), and that a
message a bound dropped is still taken when it is offered again where it counts."""

from __future__ import annotations

from consensus_builders import Cluster, evidence, feed, sent_votes

from sparkchain.consensus import NIL, Proposal, Step, Vote, VoteType
from sparkchain.identifiers.limits import (
    MAX_FUTURE_PROPOSALS_PER_VALIDATOR,
    MAX_PROPOSALS_PER_ROUND,
    MAX_ROUNDS_AHEAD,
)

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT


def test_proposals_for_rounds_beyond_the_next_are_not_kept():
    # one byzantine proposer signs the most proposals it may for every round it leads up
    # to MAX_ROUNDS_AHEAD: a core must not hold them all (with blocks of megabytes, that
    # was gigabytes for the rest of the height, since one validator cannot move our round)
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    byzantine = 2  # leads rounds 1, 5, 9, ... of height 1
    flood = [
        cluster.proposal(1, r, b"%d/%d|" % (r, k) + bytes(1000))
        for r in range(1, MAX_ROUNDS_AHEAD + 1)
        if cluster.proposer_index(1, r) == byzantine
        for k in range(MAX_PROPOSALS_PER_ROUND)
    ]
    feed(core, flood)
    assert core.round == 0
    kept = [m for m in core.height_messages() if isinstance(m, Proposal)]
    assert {p.round for p in kept} == {1}  # the next round only
    assert len(kept) == MAX_PROPOSALS_PER_ROUND


def test_a_dropped_proposal_of_a_later_round_is_taken_when_offered_again_there():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    v = cluster.proposal(1, 5, b"v")
    assert core.on_proposal(v) == []  # round 5 is too far ahead of round 0
    feed(core, cluster.votes([1, 3], PREVOTE, 1, 5))  # f+1 in round 5: line 55
    assert (core.round, core.step) == (5, Step.PROPOSE)
    effects = core.on_proposal(v)  # the relay offers it again
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [v.block_hash]


def test_an_equivocator_cannot_make_a_core_keep_a_vote_per_value_and_round():
    # a validator's further votes of a step count for the value they name (deviation (a));
    # only values proposed in that very round can gather a quorum with correct votes, so
    # only those are kept, else one validator makes us keep rounds x values x 2 votes
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    byzantine = 2  # proposer of height 1 round 1
    proposals = [cluster.proposal(1, 1, b"v%d" % k) for k in range(MAX_PROPOSALS_PER_ROUND)]
    feed(core, proposals)
    rounds = 40
    effects = []
    for r in range(rounds):
        for kind in (PREVOTE, PRECOMMIT):
            effects += core.on_vote(cluster.vote(byzantine, kind, 1, r, NIL))
            effects += feed(
                core, [cluster.vote(byzantine, kind, 1, r, p.block_hash) for p in proposals]
            )
    assert core.round == 0  # one validator alone cannot move us on
    votes = [m for m in core.height_messages() if isinstance(m, Vote)]
    # the first vote of each (round, type), and in round 1 one more per proposed value
    assert len(votes) == 2 * rounds + 2 * MAX_PROPOSALS_PER_ROUND
    assert len(evidence(effects)) == 2 * rounds  # all of it is still reported


def test_a_validator_parks_at_most_a_few_next_height_proposals():
    # a proposal carries a whole block: the per-sender message bound alone would let one
    # validator make every correct node hold MAX_FUTURE_MESSAGES_PER_VALIDATOR blocks
    cluster = Cluster(4)
    core = cluster.core(None)
    core.start(1)
    proposer = cluster.proposer_index(2, 0)
    rounds = [r for r in range(40) if cluster.proposer_index(2, r) == proposer]
    parked = [cluster.proposal(2, r, b"block-%d" % r) for r in rounds]
    assert len(parked) > MAX_FUTURE_PROPOSALS_PER_VALIDATOR
    assert feed(core, parked) == []
    kept = [m for m in core._next.take(2) if isinstance(m, Proposal)]
    assert kept == parked[:MAX_FUTURE_PROPOSALS_PER_VALIDATOR]
