"""The Tendermint consensus algorithm for one validator, as a pure state machine.

Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic 2018); each
handler cites the pseudocode line it implements. Events in (`start`, `on_proposal`,
`on_vote`, `on_timeout`), effects out, in the order the driver must execute them.

Departures from the paper, each for a reason:
- A process's own messages are counted at once instead of looping through the network.
- "f+1" and "2f+1" are `skip_threshold(n)` and `quorum_size(n)`, right for any n.
- id(v) is `Application.value_hash(v)`; the lock, with v and its prevotes, is kept in the
  last-signed record, so that it survives restarts.
- A validator's second vote in one step (evidence of equivocation) also counts towards the
  value it names (nil or a value proposed in that round), once per validator and value,
  so a tally still counts distinct signers and two quorums of one step still share a
  correct signer. The paper counts messages, and its liveness needs all correct processes
  with the same messages to see the same quorums (a coalition sending "for" to some and
  "nil" to others stalled rounds in the simulator).
- Line 49 takes v from any signed proposal of this height whose hash the precommits name:
  the quorum on id(v) is what makes the decision safe, not the round v was proposed in.
- The signer refuses to sign anything at or before its last (height, round, step) unless it
  is that very message, and the core then moves on without sending (restart safety).
- A round timer (Step.ROUND), set at every StartRound, moves to the next round when a round
  outlasts twice its timeouts. The paper's timers start only once 2f+1 messages of the
  round arrived; that assumes every message a correct process received is kept. A process
  that restarts keeps only its last-signed record, so validators can end up in different
  rounds with no 2f+1 anywhere (the simulator found it: three restarts and one crash of
  four). Changing rounds is always safe; the timer grows with the round, so after GST it
  never cuts short a round that would decide.
- The validator set is per height (DESIGN §6, §12): `validators` may be a function of the
  height, asked at `start(height)` for that height and for the next one (messages of the
  next height are buffered, so their senders are checked against the next height's set).
  The chain fixes the set of H at H-2, so the answer is known before it is needed. A signer
  outside the set of a height is an observer for that height.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sparkchain.consensus.admission import Authenticator, NextHeightBuffer
from sparkchain.consensus.app import Application, TimeoutConfig
from sparkchain.consensus.certificate import build_certificate, quorum_size, skip_threshold
from sparkchain.consensus.crypto import Ed25519Verifier, Signer, Verifier
from sparkchain.consensus.lastsigned import NO_LOCK, GuardedSigner, LastSigned, Lock
from sparkchain.consensus.messages import (
    NIL,
    Broadcast,
    Commit,
    Effect,
    Evidence,
    EvidenceFound,
    Message,
    PersistLastSigned,
    Proposal,
    ScheduleTimeout,
    Step,
    Timeout,
    Vote,
    VoteType,
)
from sparkchain.consensus.roundlog import RoundLog
from sparkchain.consensus.signbytes import (
    MAX_ROUND,
    chain_prefix,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    MAX_PROPOSALS_PER_ROUND,
    MAX_ROUNDS_AHEAD,
)

_PREVOTE = VoteType.PREVOTE
_PRECOMMIT = VoteType.PRECOMMIT


class ConsensusCore:
    def __init__(
        self,
        chain_id: str,
        validators: Sequence[bytes] | Callable[[int], Sequence[bytes]],
        signer: Signer | None,
        app: Application,
        timeouts: TimeoutConfig | None = None,
        last_signed: LastSigned | None = None,
        *,
        verifier: Verifier | None = None,
    ) -> None:
        """`signer` None (or a key outside `validators`) makes an observer that never signs.

        `validators` is one set for every height, or `validators(height)` gives the set of
        each height (see the module notes). `last_signed` is the record last persisted by
        this signer (None on first start).
        """
        if callable(validators):
            self._validators_at: Callable[[int], Sequence[bytes]] = validators
        else:
            fixed = _checked_set(validators)
            self._validators_at = lambda _height: fixed
        if last_signed is not None and (
            signer is None or last_signed.public_key != signer.public_key
        ):
            raise SparkError(ErrorCode.INVALID_ARGUMENT, "last-signed record of another key")
        self.chain_id = chain_id
        self._prefix = chain_prefix(chain_id)
        self._signer = signer
        self._guard: GuardedSigner | None = None
        self._me = b""
        if signer is not None:
            # kept whether or not the key signs at the first height: the record must follow
            # the key into every height where it is a validator
            self._guard = GuardedSigner(signer, self._prefix, last_signed)
        self._use_set(1)
        self._app = app
        self._timeouts = timeouts if timeouts is not None else TimeoutConfig()
        self._authentic = Authenticator(
            self._prefix, app, verifier if verifier is not None else Ed25519Verifier()
        )
        # paper lines 2-9, per height (reset by start)
        self.height = 0
        self.round = 0
        self.step = Step.PROPOSE
        self.decided = False
        self._lock = NO_LOCK  # lockedRound, lockedValue (and its hash and its prevotes)
        self.valid_round = -1
        self.valid_value: bytes | None = None
        self.valid_hash = NIL
        self._rounds: dict[int, RoundLog] = {}
        self._values: dict[bytes, bytes] = {}  # id(v) -> v, from signed proposals
        self._validity: dict[bytes, bool] = {}  # id(v) -> valid(v), asked once
        self._committable: list[RoundLog] = []  # rounds with a quorum of precommits
        self._evidence_seen: set[tuple[bytes, int, int]] = set()
        self._next = NextHeightBuffer()
        self._effects: list[Effect] = []

    # ---- the driver's entry points ----

    @property
    def is_validator(self) -> bool:
        return bool(self._me)

    @property
    def last_signed(self) -> LastSigned | None:
        return self._guard.last if self._guard is not None and self._me else None

    @property
    def locked_round(self) -> int:
        return self._lock.round

    @property
    def locked_hash(self) -> bytes:
        return self._lock.hash

    def start(self, height: int) -> list[Effect]:
        """Begin `height` (line 10 "upon start", and line 52-54 after a decision)."""
        if height < 1 or height <= self.height:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT, f"start({height}) after height {self.height}"
            )
        self._effects = []
        self._use_set(height)
        self._reset(height)
        replay = self._next.take(height)
        last = self.last_signed
        if last is None or last.height != height:
            self._start_round(0)
        else:
            self._restore_lock(last)
            if last.step is Step.PROPOSE:
                self._start_round(last.round)
            else:
                self._resume(last)
        self._progress()
        for message in replay:
            if self.decided:
                break
            if isinstance(message, Vote):
                self._accept_vote(message, verified=True)
            else:
                self._accept_proposal(message, verified=True)
        return self._finish()

    def on_vote(self, vote: Vote) -> list[Effect]:
        self._effects = []
        self._accept_vote(vote, verified=False)
        return self._finish()

    def on_proposal(self, proposal: Proposal) -> list[Effect]:
        self._effects = []
        self._accept_proposal(proposal, verified=False)
        return self._finish()

    def on_message(self, message: Message) -> list[Effect]:
        if isinstance(message, Vote):
            return self.on_vote(message)
        return self.on_proposal(message)

    def on_timeout(self, timeout: Timeout) -> list[Effect]:
        self._effects = []
        if timeout.height == self.height and timeout.round == self.round and not self.decided:
            step = timeout.step
            if step is Step.PROPOSE and self.step is Step.PROPOSE:
                # line 57: OnTimeoutPropose
                self._vote(_PREVOTE, NIL)
                self.step = Step.PREVOTE
            elif step is Step.PREVOTE and self.step is Step.PREVOTE:
                # line 61: OnTimeoutPrevote
                self._vote(_PRECOMMIT, NIL)
                self.step = Step.PRECOMMIT
            elif step is Step.PRECOMMIT:
                # line 65: OnTimeoutPrecommit
                self._start_round(self.round + 1)
            elif step is Step.ROUND:
                self._start_round(self.round + 1)  # the round timer (see the module notes)
            self._progress()
        return self._finish()

    def is_signed_by_a_validator(self, message: Message) -> bool:
        """Whether `message` carries a valid signature of one of the validators (for the
        driver, before it lets a message of a later height steer block sync)."""
        if isinstance(message, Vote):
            return message.validator in self._members and self._authentic.vote(message)
        return message.proposer in self._members and self._authentic.proposal(message)

    def own_messages(self) -> list[Message]:
        """This validator's signed messages of the current and previous round (to send again
        after a peer reconnects or while the height is stuck)."""
        me = self._me
        found: list[Message] = []
        if not me:
            return found
        for round_ in (self.round - 1, self.round):
            log = self._rounds.get(round_)
            if log is None:
                continue
            found.extend(p for p in log.proposals_by_hash.values() if p.proposer == me)
            for votes in (log.prevotes, log.precommits):
                vote = votes.get(me)
                if vote is not None:
                    found.append(vote)
        return found

    def height_messages(self) -> list[Message]:
        """Every verified message of the current height, by round (for relaying to a peer
        that lacks some: gossip is what the paper's liveness argument assumes)."""
        found: list[Message] = []
        for round_ in sorted(self._rounds):
            found.extend(self._rounds[round_].messages())
        return found

    # ---- state ----

    def _use_set(self, height: int) -> None:
        """Take the validator set of `height` (and of the next, for buffered messages)."""
        self.validators = _checked_set(self._validators_at(height))
        self._members = frozenset(self.validators)
        self.n = len(self.validators)
        self.quorum = quorum_size(self.n)
        self.skip = skip_threshold(self.n)
        self._next_validators = _checked_set(self._validators_at(height + 1))
        self._next_members = frozenset(self._next_validators)
        guard = self._guard
        self._me = (
            guard.public_key if guard is not None and guard.public_key in self._members else b""
        )

    def _reset(self, height: int) -> None:
        # line 53: reset lockedRound, lockedValue, validRound and validValue; empty the log
        self.height = height
        self.round = 0
        self.step = Step.PROPOSE
        self.decided = False
        self._lock = NO_LOCK
        self.valid_round, self.valid_value, self.valid_hash = -1, None, NIL
        self._rounds = {}
        self._values = {}
        self._validity = {}
        self._committable = []
        self._evidence_seen = set()

    def _restore_lock(self, last: LastSigned) -> None:
        """Restart inside a height where we signed: take back the lock, and with its value
        and prevotes also validValue/validRound, so that as a proposer we can propose it
        again with a valid round that peers can check (line 28)."""
        lock = self._lock = last.lock
        if lock.round < 0 or not lock.value or self._app.value_hash(lock.value) != lock.hash:
            return
        self.valid_round, self.valid_value, self.valid_hash = lock.round, lock.value, lock.hash
        self._values[lock.hash] = lock.value
        log = self._log(lock.round)
        proposal = lock.proposal
        if (
            proposal is not None
            and (proposal.height, proposal.round) == (self.height, log.round)
            and proposal.block_hash == lock.hash
            and proposal.proposer == self._proposer(self.height, log.round)
            and proposal.block_hash not in log.proposals_by_hash
            and self._authentic.proposal(proposal)
        ):
            # the round's proposal, so that peers can count the polka's prevotes again
            # (see consensus/lastsigned.py) once the relay offers it to them
            self._store_proposal(log, proposal)
        for vote in lock.votes:
            if (
                vote.type is _PREVOTE
                and (vote.height, vote.round) == (self.height, log.round)
                and vote.block_hash == lock.hash
                and vote.validator in self._members
                and vote.validator not in log.prevotes
                and self._authentic.vote(vote)
            ):
                log.add_prevote(vote, self.quorum)

    def _resume(self, last: LastSigned) -> None:
        """Restart inside a height where we already voted: go back to where the record says
        and send that vote again (peers may have missed it)."""
        self.round = last.round
        self.step = last.step
        self._schedule(Step.ROUND)
        vote = Vote(
            VoteType(int(last.step)),
            self.height,
            last.round,
            last.block_hash,
            self._me,
            last.signature,
        )
        self._effects.append(Broadcast(vote))
        self._store_vote(vote)

    def _log(self, round_: int) -> RoundLog:
        log = self._rounds.get(round_)
        if log is None:
            log = self._rounds[round_] = RoundLog(round_)
        return log

    def _finish(self) -> list[Effect]:
        effects = self._effects
        self._effects = []
        if self.decided:
            # timers of a decided height would only be ignored
            height = self.height
            effects = [
                e
                for e in effects
                if not (isinstance(e, ScheduleTimeout) and e.timeout.height == height)
            ]
        return effects

    # ---- incoming messages ----

    def _accept_vote(self, vote: Vote, verified: bool) -> None:
        if vote.height != self.height or self.decided:
            self._buffer(vote, vote.validator, verified)
            return
        round_ = vote.round
        validator = vote.validator
        if (
            round_ < 0
            or round_ > self.round + MAX_ROUNDS_AHEAD
            or round_ > MAX_ROUND
            or validator not in self._members
        ):
            return
        log = self._rounds.get(round_)
        kind = vote.type
        if kind is not _PREVOTE and kind is not _PRECOMMIT:
            return
        prior = None
        if log is not None:
            prior = (log.prevotes if kind is _PREVOTE else log.precommits).get(validator)
        if prior is not None:
            if prior.block_hash != vote.block_hash:
                assert log is not None
                self._second_vote(log, prior, vote, verified)
            return
        if not verified and not self._authentic.vote(vote):
            return
        log = self._log(round_)
        self._count_vote(log, vote)
        self._after_message(log)

    def _accept_proposal(self, proposal: Proposal, verified: bool) -> None:
        if proposal.height != self.height or self.decided:
            self._buffer(proposal, proposal.proposer, verified)
            return
        round_ = proposal.round
        # only up to the next round: a proposal carries a whole block, and one byzantine
        # proposer could otherwise make us hold MAX_PROPOSALS_PER_ROUND of them for every
        # round it leads up to MAX_ROUNDS_AHEAD (the relay offers a dropped one again)
        if round_ < 0 or round_ > self.round + 1 or round_ > MAX_ROUND:
            return
        if proposal.proposer != self._proposer(self.height, round_):
            return
        log = self._rounds.get(round_)
        if log is not None and (
            proposal.block_hash in log.proposals_by_hash
            or len(log.proposals_by_hash) >= MAX_PROPOSALS_PER_ROUND
        ):
            return
        if not verified and not self._authentic.proposal(proposal):
            return
        log = self._log(round_)
        self._store_proposal(log, proposal)
        for earlier in self._committable:
            if earlier.commit_hash == proposal.block_hash:
                self._try_decide(earlier)  # line 49, the value was missing until now
        self._after_message(log)

    def _second_vote(self, log: RoundLog, prior: Vote, vote: Vote, verified: bool) -> None:
        """A validator's vote for another value in a step where we have one from it.

        It is evidence, and it also counts towards its own value (each validator at most
        once per value): the paper counts messages, and its liveness argument needs every
        correct process that received the same messages to see the same quorums, whichever
        of an equivocator's votes each received first. Only votes for nil or for a value
        proposed in that same round are kept: only those can reach a quorum that includes
        correct votes (lines 22-36 vote only for the round's proposal), and this bounds
        what an equivocator makes us keep to a few votes per round (gossip offers a vote
        again once the proposal it names has arrived).
        """
        key = (int(vote.type), vote.validator, vote.block_hash)
        if key in log.extras:
            return
        if not verified and not self._authentic.vote(vote):
            return
        self._equivocation(prior, vote)
        if vote.block_hash != NIL and vote.block_hash not in log.proposals_by_hash:
            return
        log.add_extra(vote, self.quorum)
        self._note_committable(log)
        self._after_message(log)

    def _store_proposal(self, log: RoundLog, proposal: Proposal) -> None:
        log.proposals_by_hash[proposal.block_hash] = proposal
        if log.first_proposal is None:
            log.first_proposal = proposal
        log.senders.add(proposal.proposer)
        self._values.setdefault(proposal.block_hash, proposal.value)

    def _after_message(self, log: RoundLog) -> None:
        if self.decided:
            return
        if log.round > self.round:
            if len(log.senders) >= self.skip:
                # line 55: upon f+1 messages of a round > round_p, StartRound(round)
                self._start_round(log.round)
                self._progress()
            return
        if log.round < self.round:
            if log.commit_hash is not None:
                self._try_decide(log)  # line 49 for an earlier round
            if self.decided or self.step is not Step.PROPOSE:
                return  # an earlier round's prevotes matter only to line 28
        self._progress()

    def _buffer(self, message: Message, sender: bytes, verified: bool) -> None:
        """Keep a verified message of the next height, bounded per sender and in total."""
        if message.height != self.height + 1 or sender not in self._next_members:
            return
        if message in self._next or not self._next.has_room(message, sender):
            return
        if not verified:
            if isinstance(message, Vote):
                ok = (
                    message.type in (_PREVOTE, _PRECOMMIT)
                    and 0 <= message.round <= MAX_ROUND
                    and self._authentic.vote(message)
                )
            else:
                ok = (
                    0 <= message.round <= MAX_ROUND
                    and sender
                    == self._next_validators[
                        (message.height + message.round) % len(self._next_validators)
                    ]
                    and self._authentic.proposal(message)
                )
            if not ok:
                return
        self._next.add(message, sender)

    def _equivocation(self, first: Vote, second: Vote) -> None:
        key = (first.validator, first.round, int(first.type))
        if key not in self._evidence_seen:
            self._evidence_seen.add(key)
            self._effects.append(EvidenceFound(Evidence(first, second)))

    # ---- the algorithm ----

    def _proposer(self, height: int, round_: int) -> bytes:
        return self.validators[(height + round_) % self.n]

    def _valid(self, block_hash: bytes, value: bytes) -> bool:
        known = self._validity.get(block_hash)
        if known is None:
            known = self._validity[block_hash] = bool(self._app.validate(self.height, value))
        return known

    def _start_round(self, round_: int) -> None:
        # line 55 again: messages kept earlier may already show f+1 validators further on
        for later, log in self._rounds.items():
            if later > round_ and len(log.senders) >= self.skip:
                round_ = later
        # line 11: StartRound(round)
        self.round = round_
        self.step = Step.PROPOSE
        self._schedule(Step.ROUND)
        if self._guard is not None and self._proposer(self.height, round_) == self._me:
            # lines 14-19: propose validValue if there is one, else getValue()
            if self.valid_value is not None:
                value, block_hash = self.valid_value, self.valid_hash
            else:
                value = self._app.propose(self.height, round_)
                block_hash = self._app.value_hash(value)
            if self._propose(value, block_hash):
                return
        # line 21 (and a proposer whose signer refused: it must not wait forever)
        self._schedule(Step.PROPOSE)

    def _progress(self) -> None:
        """Apply the rules of the current round until the step stops changing."""
        while not self.decided:
            log = self._rounds.get(self.round)
            if log is None:
                return
            step = self.step
            self._round_rules(log)
            if self.step is step:
                return

    def _round_rules(self, log: RoundLog) -> None:
        """The upon-rules of the current round, in one pass whose order matters:

        1. lines 22/28 (step propose): they may move the step to prevote, and then line 36
           can fire in the same pass (a proposal that arrives after its polka);
        2. line 36 before lines 34 and 44: a process with a polka for the proposal locks and
           precommits it, which leaves the prevote step, so it neither starts the prevote
           timeout (34) nor precommits nil (44) for a round it already precommitted in;
        3. lines 34 and 44, only while still in the prevote step;
        4. line 47 (any step), then line 49 last: a decision ends the height, after which
           nothing else of the round matters.
        Each rule is guarded by its own condition ("for the first time" flags on the log),
        so running the pass again on the next message is harmless.
        """
        quorum = self.quorum
        if self.step is Step.PROPOSE:
            proposal = log.first_proposal
            if proposal is not None:
                self._on_proposal_in_propose_step(proposal)
        if self.step is not Step.PROPOSE and not log.line36_done and log.polka is not None:
            proposal = log.proposals_by_hash.get(log.polka)
            if proposal is not None and self._valid(proposal.block_hash, proposal.value):
                # line 36: upon PROPOSAL(h, round_p, v, *) and 2f+1 PREVOTE(h, round_p, id(v))
                # while valid(v) and step_p >= prevote, for the first time
                log.line36_done = True
                if self.step is Step.PREVOTE:
                    # lines 38-41: lock v and precommit it
                    self._lock = Lock(
                        self.round,
                        proposal.block_hash,
                        proposal.value,
                        tuple(log.prevotes_for(proposal.block_hash)),
                        proposal,
                    )
                    self._vote(_PRECOMMIT, proposal.block_hash)
                    self.step = Step.PRECOMMIT
                # lines 42-43
                self.valid_round = self.round
                self.valid_value, self.valid_hash = proposal.value, proposal.block_hash
        if self.step is Step.PREVOTE:
            if not log.prevote_timeout_set and log.prevote_total >= quorum:
                # line 34: upon 2f+1 PREVOTE(h, round_p, *) while step_p = prevote, first time
                log.prevote_timeout_set = True
                self._schedule(Step.PREVOTE)
            if log.nil_prevotes() >= quorum:
                # line 44: upon 2f+1 PREVOTE(h, round_p, nil) while step_p = prevote
                self._vote(_PRECOMMIT, NIL)
                self.step = Step.PRECOMMIT
        if not log.precommit_timeout_set and log.precommit_total >= quorum:
            # line 47: upon 2f+1 PRECOMMIT(h, round_p, *) for the first time
            log.precommit_timeout_set = True
            self._schedule(Step.PRECOMMIT)
        if log.commit_hash is not None:
            self._try_decide(log)

    def _on_proposal_in_propose_step(self, proposal: Proposal) -> None:
        valid_round = proposal.valid_round
        if valid_round == -1:
            # line 22: upon PROPOSAL(h, round_p, v, -1) from proposer(h, round_p)
            # while step_p = propose
            ok = self._valid(proposal.block_hash, proposal.value) and self._lock_admits(
                proposal.block_hash, -1
            )
        else:
            earlier = self._rounds.get(valid_round)
            if earlier is None or earlier.polka != proposal.block_hash:
                return
            # line 28: upon PROPOSAL(h, round_p, v, vr) from proposer(h, round_p) and
            # 2f+1 PREVOTE(h, vr, id(v)) while step_p = propose and 0 <= vr < round_p
            ok = self._valid(proposal.block_hash, proposal.value) and self._lock_admits(
                proposal.block_hash, valid_round
            )
        # lines 24/26 and 30/32
        self._vote(_PREVOTE, proposal.block_hash if ok else NIL)
        self.step = Step.PREVOTE

    def _lock_admits(self, block_hash: bytes, valid_round: int) -> bool:
        """Line 23: lockedRound_p = -1 or lockedValue_p = v; line 29: lockedRound_p <= vr
        or lockedValue_p = v. (With vr = -1 the two read the same.)"""
        return self._lock.round <= valid_round or self._lock.hash == block_hash

    def _try_decide(self, log: RoundLog) -> None:
        # line 49: upon PROPOSAL(h, r, v, *) and 2f+1 PRECOMMIT(h, r, id(v)) while
        # decision_p[h_p] = nil
        block_hash = log.commit_hash
        if self.decided or block_hash is None:
            return
        value = self._values.get(block_hash)
        if value is None or not self._valid(block_hash, value):
            return
        # lines 50-51; lines 52-54 happen when the driver calls start(height + 1)
        certificate = build_certificate(
            self.height, log.round, block_hash, log.precommits_for(block_hash)
        )
        self.decided = True
        self._effects.append(Commit(self.height, value, certificate))

    # ---- signing ----

    def _schedule(self, step: Step) -> None:
        delay = self._timeouts.delay_ms(step, self.round)
        self._effects.append(ScheduleTimeout(Timeout(self.height, self.round, step), delay))

    def _propose(self, value: bytes, block_hash: bytes) -> bool:
        assert self._guard is not None
        signed = self._guard.proposal(
            self.height, self.round, self.valid_round, value, block_hash, self._lock
        )
        if signed is None:
            return False
        proposal, record = signed
        if record is not None:
            self._effects.append(PersistLastSigned(record))
        self._effects.append(Broadcast(proposal))  # line 19
        self._store_proposal(self._log(self.round), proposal)
        return True

    def _vote(self, kind: VoteType, block_hash: bytes) -> None:
        """Sign and broadcast a vote of the current round, and count it at once."""
        if self._guard is None or not self._me:
            return  # an observer, or a key outside this height's set
        signed = self._guard.vote(kind, self.height, self.round, block_hash, self._lock)
        if signed is None:
            return  # the record forbids it: move on without sending
        vote, record = signed
        if record is not None:
            self._effects.append(PersistLastSigned(record))
        self._effects.append(Broadcast(vote))
        self._store_vote(vote)

    def _store_vote(self, vote: Vote) -> None:
        log = self._log(vote.round)
        votes = log.prevotes if vote.type is _PREVOTE else log.precommits
        prior = votes.get(vote.validator)
        if prior is not None:
            if prior.block_hash != vote.block_hash:
                self._second_vote(log, prior, vote, verified=True)  # a twin holds our key
            return
        self._count_vote(log, vote)

    def _count_vote(self, log: RoundLog, vote: Vote) -> None:
        """Count a validator's first vote of its step (verified, not yet in `log`)."""
        if vote.type is _PREVOTE:
            log.add_prevote(vote, self.quorum)
        else:
            log.add_precommit(vote, self.quorum)
            self._note_committable(log)

    def _note_committable(self, log: RoundLog) -> None:
        if log.commit_hash is not None and log not in self._committable:
            self._committable.append(log)


def _checked_set(validators: Sequence[bytes]) -> tuple[bytes, ...]:
    members = tuple(validators)
    if not members or len(set(members)) != len(members):
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "validators must be distinct, ≥ 1")
    return members
