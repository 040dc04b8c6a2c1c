"""The consensus core, one rule at a time: events in, effects out, no network, no clock."""

from __future__ import annotations

import pytest
from consensus_builders import (
    CHAIN,
    TIMEOUTS,
    Cluster,
    CountingApp,
    commits,
    evidence,
    feed,
    persisted,
    sent,
    sent_votes,
    timeouts,
    value_hash,
    verifier,
)

from sparkchain.consensus import (
    NIL,
    Broadcast,
    PersistLastSigned,
    Proposal,
    Step,
    Timeout,
    Vote,
    VoteType,
    quorum_size,
    skip_threshold,
    verify_certificate,
    verify_evidence,
)
from sparkchain.consensus.lastsigned import NO_LOCK, GuardedSigner, LastSigned, Lock
from sparkchain.consensus.signbytes import chain_prefix
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_FUTURE_MESSAGES_PER_VALIDATOR

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT


@pytest.mark.parametrize(
    ("n", "quorum", "skip"),
    [(1, 1, 1), (2, 2, 1), (3, 3, 1), (4, 3, 2), (5, 4, 2), (6, 5, 2), (7, 5, 3), (10, 7, 4)],
)
def test_quorum_is_more_than_two_thirds_and_skip_is_f_plus_one(n: int, quorum: int, skip: int):
    assert quorum_size(n) == quorum
    assert skip_threshold(n) == skip
    assert 3 * quorum > 2 * n  # two quorums always share a correct validator


def test_single_validator_commits_alone_at_once_with_real_signatures():
    cluster = Cluster(1, real=True)
    core = cluster.core(0)
    effects = core.start(1)
    [commit] = commits(effects)
    assert commit.height == 1 and commit.value == b"value 1/0/a"
    verify_certificate(CHAIN, cluster.keys, commit.certificate)  # real Ed25519 by default
    kinds = [m.type if isinstance(m, Vote) else "proposal" for m in sent(effects)]
    assert kinds == ["proposal", PREVOTE, PRECOMMIT]
    assert timeouts(effects) == []  # a decided height needs no timers
    assert commits(core.start(2))[0].height == 2


def test_every_broadcast_is_preceded_by_the_record_that_covers_it():
    effects = Cluster(1).core(0).start(1)
    record: LastSigned | None = None
    checked = 0
    for effect in effects:
        if isinstance(effect, PersistLastSigned):
            record = LastSigned.from_bytes(effect.record)
        elif isinstance(effect, Broadcast):
            message = effect.message
            step = Step.PROPOSE if isinstance(message, Proposal) else Step(int(message.type))
            assert record is not None
            assert (record.height, record.round, record.step) == (1, 0, step)
            assert record.signature == message.signature
            checked += 1
    assert checked == 3  # the proposal, the prevote and the precommit


def test_one_of_two_validators_never_decides_alone():
    cluster = Cluster(2)
    core = cluster.core(1)  # validator 1 proposes height 1 round 0
    effects = core.start(1)
    assert commits(effects) == []
    assert sent_votes(effects, PREVOTE)  # it voted, but one vote of two is no quorum
    assert sent_votes(effects, PRECOMMIT) == []
    proposal = sent(effects)[0]
    assert isinstance(proposal, Proposal)
    more = feed(core, [cluster.vote(0, PREVOTE, 1, 0, proposal.block_hash)])
    assert sent_votes(more, PRECOMMIT) and commits(more) == []
    done = feed(core, [cluster.vote(0, PRECOMMIT, 1, 0, proposal.block_hash)])
    assert [c.value for c in commits(done)] == [proposal.value]


def test_follower_prevotes_a_valid_proposal_and_nil_for_an_invalid_one():
    cluster = Cluster(4)
    good = cluster.core(0)
    good.start(1)
    effects = good.on_proposal(cluster.proposal(1, 0, b"fine"))
    assert [v.block_hash for v in sent_votes(effects, PREVOTE)] == [value_hash(b"fine")]
    other = cluster.core(0)
    other.start(1)
    effects = other.on_proposal(cluster.proposal(1, 0, b"bad block"))
    assert [v.block_hash for v in sent_votes(effects, PREVOTE)] == [NIL]


def test_quorum_of_precommits_with_the_proposal_commits_a_valid_certificate():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    proposal = cluster.proposal(1, 0, b"block one")
    h = proposal.block_hash
    effects = feed(core, [proposal, *cluster.votes([1, 2, 3], PREVOTE, 1, 0, h)])
    assert [v.block_hash for v in sent_votes(effects, PRECOMMIT)] == [h]
    assert core.locked_round == 0 and core.locked_hash == h
    effects = feed(core, cluster.votes([1, 2], PRECOMMIT, 1, 0, h))
    [commit] = commits(effects)
    assert commit.value == b"block one"
    assert len(commit.certificate.signatures) == 3
    verify_certificate(CHAIN, cluster.keys, commit.certificate, verifier())


def test_precommits_without_the_proposal_wait_for_it_then_commit():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    proposal = cluster.proposal(1, 0, b"late")
    assert commits(feed(core, cluster.votes([1, 2, 3], PRECOMMIT, 1, 0, proposal.block_hash))) == []
    assert commits(core.on_proposal(proposal))[0].value == b"late"


def test_vote_with_a_bad_signature_is_dropped():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    proposal = cluster.proposal(1, 0, b"x")
    core.on_proposal(proposal)
    good = cluster.votes([1, 2], PRECOMMIT, 1, 0, proposal.block_hash)
    forged = cluster.vote(3, PRECOMMIT, 1, 0, proposal.block_hash)
    forged = Vote(forged.type, 1, 0, forged.block_hash, forged.validator, b"\x00" * 16)
    assert commits(feed(core, [*good, forged])) == []
    # the real vote of the same validator still counts afterwards
    assert commits(core.on_vote(cluster.vote(3, PRECOMMIT, 1, 0, proposal.block_hash)))


def test_messages_from_outside_the_validator_set_or_wrong_proposer_are_ignored():
    cluster = Cluster(4)
    stranger = Cluster(5)
    core = cluster.core(0)
    core.start(1)
    assert core.on_vote(stranger.vote(4, PREVOTE, 1, 0)) == []
    wrong = stranger.proposal(1, 3, b"v")  # validator 4 of another set
    assert core.on_proposal(wrong) == []
    mismatched = cluster.proposal(1, 0, b"v")
    tampered = Proposal(1, 0, -1, mismatched.block_hash, b"other", mismatched.proposer, b"")
    assert core.on_proposal(tampered) == []
    assert core.height_messages() == []


def test_conflicting_votes_are_reported_once_as_verifiable_evidence():
    cluster = Cluster(4, real=True)
    core = cluster.core(0)
    core.start(1)
    first = cluster.vote(2, PREVOTE, 1, 0, NIL)
    second = cluster.vote(2, PREVOTE, 1, 0, value_hash(b"something"))
    [found] = evidence(feed(core, [first, second, second]))
    assert (found.evidence.first, found.evidence.second) == (first, second)
    verify_evidence(CHAIN, cluster.keys, found.evidence)
    with pytest.raises(SparkError) as caught:
        verify_evidence(CHAIN, cluster.keys, type(found.evidence)(first, first))
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_equivocated_votes_count_for_each_value_they_name():
    # whichever of an equivocator's votes arrived first, every correct process that has
    # both sees the same quorum (otherwise a split of first-arrivals can stall rounds)
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    proposal = cluster.proposal(1, 0, b"v")
    h = proposal.block_hash
    core.on_proposal(proposal)  # core 0 prevotes h
    feed(core, [cluster.vote(3, PREVOTE, 1, 0, NIL), cluster.vote(1, PREVOTE, 1, 0, h)])
    assert core.step is Step.PREVOTE
    effects = core.on_vote(cluster.vote(3, PREVOTE, 1, 0, h))  # 3's second vote: for h
    assert [v.block_hash for v in sent_votes(effects, PRECOMMIT)] == [h]
    assert evidence(effects)


def test_timeouts_grow_with_the_round_and_move_the_round_on():
    cluster = Cluster(4)
    core = cluster.core(0)
    round0, propose0 = timeouts(core.start(1))
    assert propose0.timeout == Timeout(1, 0, Step.PROPOSE)
    assert propose0.delay_ms == TIMEOUTS.propose_ms
    assert round0.timeout == Timeout(1, 0, Step.ROUND)
    effects = core.on_timeout(propose0.timeout)  # line 57: prevote nil
    assert [v.block_hash for v in sent_votes(effects, PREVOTE)] == [NIL]
    effects = feed(core, cluster.votes([1, 2], PREVOTE, 1, 0, NIL))  # line 44
    assert [v.block_hash for v in sent_votes(effects, PRECOMMIT)] == [NIL]
    effects = feed(core, cluster.votes([1, 2], PRECOMMIT, 1, 0, NIL))  # line 47
    [precommit0] = timeouts(effects)
    assert precommit0.timeout.step is Step.PRECOMMIT
    effects = core.on_timeout(precommit0.timeout)  # line 65: round 1
    assert core.round == 1
    round1, propose1 = timeouts(effects)
    assert propose1.delay_ms == TIMEOUTS.propose_ms + TIMEOUTS.delta_ms
    assert round1.delay_ms > round0.delay_ms
    assert core.on_timeout(propose0.timeout) == []  # a stale timer does nothing
    assert core.on_timeout(round0.timeout) == []


def test_round_timer_moves_on_without_any_message():
    # after restarts nobody may hold 2f+1 messages of a round: the round timer still ends it
    core = Cluster(4).core(0)
    round0, _ = timeouts(core.start(1))
    effects = core.on_timeout(round0.timeout)
    assert core.round == 1 and Timeout(1, 1, Step.ROUND) in [t.timeout for t in timeouts(effects)]


def test_f_plus_one_messages_of_a_later_round_skip_to_it_but_f_do_not():
    cluster = Cluster(7)  # f = 2
    core = cluster.core(0)
    core.start(1)
    feed(core, cluster.votes([1, 2], PREVOTE, 1, 5))
    assert core.round == 0
    feed(core, [cluster.vote(3, PRECOMMIT, 1, 5)])
    assert core.round == 5


def test_a_locked_validator_prevotes_nil_for_another_value_until_a_later_polka():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    v = cluster.proposal(1, 0, b"v")
    feed(core, [v, *cluster.votes([1, 2], PREVOTE, 1, 0, v.block_hash)])
    assert (core.locked_round, core.locked_hash) == (0, v.block_hash)
    feed(core, cluster.votes([1, 2, 3], PRECOMMIT, 1, 1))  # everyone else moves to round 1
    assert core.round == 1
    w = cluster.proposal(1, 1, b"w")
    effects = core.on_proposal(w)  # line 23: locked on v, so nil
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [NIL]
    # round 2 re-proposes w with a round-1 polka for it: line 29 lets the lock go
    feed(core, cluster.votes([1, 2, 3], PREVOTE, 1, 1, w.block_hash))
    feed(core, cluster.votes([1, 2, 3], PRECOMMIT, 1, 2))
    assert core.round == 2
    effects = core.on_proposal(cluster.proposal(1, 2, b"w", valid_round=1))
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [w.block_hash]


def test_a_lock_from_a_later_round_than_the_valid_round_refuses_the_value():
    # line 29: lockedRound_p <= vr or lockedValue_p = v; here lockedRound 1 > vr 0
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    w = cluster.proposal(1, 0, b"w")
    core.on_timeout(Timeout(1, 0, Step.PROPOSE))  # w never reached us: prevote nil
    feed(core, cluster.votes([1, 2, 3], PREVOTE, 1, 0, w.block_hash))  # a polka for w
    core.on_timeout(Timeout(1, 0, Step.PREVOTE))
    core.on_timeout(Timeout(1, 0, Step.PRECOMMIT))
    v = cluster.proposal(1, 1, b"v")
    feed(core, [v, *cluster.votes([2, 3], PREVOTE, 1, 1, v.block_hash)])
    assert (core.locked_round, core.locked_hash) == (1, v.block_hash)
    core.on_timeout(Timeout(1, 1, Step.PRECOMMIT))
    again = cluster.proposal(1, 2, b"w", valid_round=0)
    effects = core.on_proposal(again)
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [NIL]
    # control: unlocked, the same proposal with the same polka is prevoted (line 30)
    fresh = cluster.core(0)
    fresh.start(1)
    feed(fresh, cluster.votes([1, 2, 3], PREVOTE, 1, 0, w.block_hash))
    feed(fresh, cluster.votes([1, 2], PRECOMMIT, 1, 2))  # skip to round 2
    effects = fresh.on_proposal(again)
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [w.block_hash]


def test_proposer_re_proposes_its_valid_value_with_its_valid_round():
    cluster = Cluster(4)
    core = cluster.core(3)  # proposer of height 1 round 2
    core.start(1)
    v = cluster.proposal(1, 0, b"v")
    feed(core, [v, *cluster.votes([0, 1, 2], PREVOTE, 1, 0, v.block_hash)])
    assert core.valid_round == 0
    effects = feed(core, cluster.votes([0, 1, 2], PRECOMMIT, 1, 2))  # skip to round 2
    [proposal] = [m for m in sent(effects) if isinstance(m, Proposal)]
    assert (proposal.round, proposal.valid_round, proposal.value) == (2, 0, b"v")


def test_validate_is_asked_once_per_value():
    cluster = Cluster(4)
    app = CountingApp()
    core = cluster.core(0, app)
    core.start(1)
    v = cluster.proposal(1, 0, b"v")
    feed(core, [v, *cluster.votes([1, 2, 3], PREVOTE, 1, 0, v.block_hash)])
    feed(core, cluster.votes([1, 2, 3], PRECOMMIT, 1, 0, v.block_hash))
    assert app.validations == [b"v"]


def test_observer_commits_but_never_signs():
    cluster = Cluster(4)
    core = cluster.core(None)
    assert not core.is_validator
    effects = core.start(1)
    v = cluster.proposal(1, 0, b"v")
    effects += feed(core, [v, *cluster.votes([0, 1, 2], PREVOTE, 1, 0, v.block_hash)])
    effects += feed(core, cluster.votes([0, 1, 2], PRECOMMIT, 1, 0, v.block_hash))
    assert [c.value for c in commits(effects)] == [b"v"]
    assert sent(effects) == [] and persisted(effects) == []


def test_next_height_messages_are_kept_and_replayed_at_start_within_a_bound():
    cluster = Cluster(4)
    core = cluster.core(None)
    core.start(1)
    v = cluster.proposal(2, 0, b"next")
    early = [v, *cluster.votes([0, 1, 2], PREVOTE, 2, 0, v.block_hash)]
    early += cluster.votes([0, 1, 2], PRECOMMIT, 2, 0, v.block_hash)
    assert feed(core, early) == []
    assert feed(core, [cluster.vote(1, PREVOTE, 3, 0)]) == []  # two ahead: dropped
    flood = [cluster.vote(3, PREVOTE, 2, r) for r in range(MAX_FUTURE_MESSAGES_PER_VALIDATOR + 5)]
    feed(core, flood)
    assert len(core._next) == len(early) + MAX_FUTURE_MESSAGES_PER_VALIDATOR
    assert [c.value for c in commits(core.start(2))] == [b"next"]


def test_own_messages_are_the_latest_signed_for_re_sending():
    cluster = Cluster(4)
    core = cluster.core(1)  # proposer of height 1 round 0
    effects = core.start(1)
    assert core.own_messages() == sent(effects)
    assert Cluster(4).core(None).own_messages() == []


def test_restart_with_the_record_resends_the_same_vote_and_never_another():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    v = cluster.proposal(1, 0, b"v")
    first = core.on_proposal(v)
    [record] = persisted(first)
    [prevote] = sent_votes(first, PREVOTE)
    restarted = cluster.core(0, last_signed=record)
    effects = restarted.start(1)
    assert sent(effects) == [prevote] and persisted(effects) == []
    assert restarted.step is Step.PREVOTE
    # the propose timeout of round 0 must not make it prevote nil now
    assert restarted.on_timeout(Timeout(1, 0, Step.PROPOSE)) == []


def test_restart_keeps_the_lock_from_the_record():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(1)
    v = cluster.proposal(1, 0, b"v")
    effects = feed(core, [v, *cluster.votes([1, 2], PREVOTE, 1, 0, v.block_hash)])
    record = persisted(effects)[-1]
    assert (record.step, record.lock.round, record.lock.hash) == (Step.PRECOMMIT, 0, v.block_hash)
    assert record.lock.value == b"v" and len(record.lock.votes) == 3  # the polka behind it
    restarted = cluster.core(0, last_signed=record)
    restarted.start(1)
    feed(restarted, cluster.votes([1, 2, 3], PRECOMMIT, 1, 1))
    effects = restarted.on_proposal(cluster.proposal(1, 1, b"w"))
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [NIL]


def test_restarted_locked_proposer_proposes_its_locked_value_again_and_peers_accept_it():
    # everyone restarted: only the record still knows v; its prevotes convince a peer
    cluster = Cluster(4)
    core = cluster.core(3)  # proposer of height 1 round 2
    core.start(1)
    v = cluster.proposal(1, 0, b"v")
    effects = feed(core, [v, *cluster.votes([0, 1], PREVOTE, 1, 0, v.block_hash)])
    restarted = cluster.core(3, last_signed=persisted(effects)[-1])
    restarted.start(1)
    effects = feed(restarted, cluster.votes([0, 1], PRECOMMIT, 1, 2))  # skip to round 2
    [proposal] = [m for m in sent(effects) if isinstance(m, Proposal)]
    assert (proposal.value, proposal.valid_round) == (b"v", 0)
    peer = cluster.core(0)  # a peer that lost round 0 too
    peer.start(1)
    feed(peer, cluster.votes([1, 2], PRECOMMIT, 1, 2))
    effects = feed(peer, [proposal, *restarted.height_messages()])
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [v.block_hash]  # line 28


def test_restarted_proposer_whose_application_now_proposes_another_value_signs_nothing():
    cluster = Cluster(4)
    core = cluster.core(1, app=CountingApp(tag=b"a"))  # proposer of height 1 round 0
    record = persisted(core.start(1))[0]  # it crashed after its proposal left
    assert record.step is Step.PROPOSE
    restarted = cluster.core(1, app=CountingApp(tag=b"b"), last_signed=record)
    effects = restarted.start(1)
    assert sent(effects) == [] and persisted(effects) == []  # refused, not re-signed
    effects = restarted.on_timeout(Timeout(1, 0, Step.PROPOSE))
    assert [x.block_hash for x in sent_votes(effects, PREVOTE)] == [NIL]


def test_guarded_signer_signs_each_step_once_and_never_goes_back():
    signer = Cluster(1).signers[0]
    guard = GuardedSigner(signer, chain_prefix("c"), None)
    h1, h2 = b"1" * 32, b"2" * 32
    signed = guard.vote(PREVOTE, 1, 0, h1, NO_LOCK)
    assert signed is not None and signed[1] is not None
    assert guard.vote(PREVOTE, 1, 0, h2, NO_LOCK) is None  # conflicting
    repeat = guard.vote(PREVOTE, 1, 0, h1, NO_LOCK)
    assert repeat is not None and repeat == (signed[0], None)  # the same, not persisted again
    assert guard.vote(PRECOMMIT, 1, 0, NIL, NO_LOCK) is not None
    assert guard.vote(PREVOTE, 1, 0, h1, NO_LOCK) is None  # an earlier step
    assert guard.proposal(1, 0, -1, b"x", h1, NO_LOCK) is None  # an earlier step
    assert guard.proposal(1, 1, -1, b"x", h1, NO_LOCK) is not None


def test_last_signed_record_round_trips_and_damage_is_detected():
    polka = tuple(Cluster(4).votes([0, 1, 3], PREVOTE, 7, 2, value_hash(b"v")))
    lock = Lock(2, value_hash(b"v"), b"v", polka)
    record = LastSigned(b"k" * 32, 7, 3, Step.PRECOMMIT, b"h" * 32, -1, b"s" * 64, lock)
    raw = record.to_bytes()
    assert LastSigned.from_bytes(raw) == record
    for damaged in (raw[:-1], raw[:10], raw[:20] + bytes([raw[20] ^ 1]) + raw[21:], b""):
        with pytest.raises(SparkError) as caught:
            LastSigned.from_bytes(damaged)
        assert caught.value.code is ErrorCode.STORAGE_CORRUPT


def test_record_of_another_key_is_refused():
    cluster = Cluster(4)
    record = LastSigned(cluster.keys[1], 1, 0, Step.PREVOTE, NIL, -1, b"")
    with pytest.raises(SparkError) as caught:
        cluster.core(0, last_signed=record)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_start_must_move_forward_and_validators_must_be_distinct():
    cluster = Cluster(4)
    core = cluster.core(0)
    core.start(3)
    with pytest.raises(SparkError):
        core.start(3)
    with pytest.raises(SparkError):
        type(core)(CHAIN, [cluster.keys[0]] * 2, None, CountingApp())


def test_relayed_copies_of_a_next_height_message_are_kept_once():
    cluster = Cluster(4)
    core = cluster.core(None)
    core.start(1)
    vote = cluster.vote(3, PREVOTE, 2, 0)
    feed(core, [vote] * (MAX_FUTURE_MESSAGES_PER_VALIDATOR + 1))
    assert len(core._next) == 1
    later = cluster.vote(3, PREVOTE, 2, 1)
    feed(core, [later])  # the copies did not use up the sender's quota
    assert len(core._next) == 2
