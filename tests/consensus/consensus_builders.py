"""Builders for consensus tests: validator keys, a counting application, signed messages,
and effect filters. Fake signatures by default (fast); `real=True` for Ed25519."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sparkchain.consensus import (
    NIL,
    Broadcast,
    Commit,
    ConsensusCore,
    Ed25519Signer,
    Ed25519Verifier,
    Effect,
    EvidenceFound,
    LastSigned,
    Message,
    PersistLastSigned,
    Proposal,
    ScheduleTimeout,
    Signer,
    TimeoutConfig,
    Verifier,
    Vote,
    VoteType,
)
from sparkchain.consensus.signbytes import chain_prefix, proposal_sign_bytes, vote_sign_bytes
from sparkchain.consensus.sim.fakecrypto import FakeSigner, FakeVerifier, fake_public_key
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG

CHAIN = "test-chain"
PREFIX = chain_prefix(CHAIN)
TIMEOUTS = TimeoutConfig(propose_ms=1000, prevote_ms=500, precommit_ms=500, delta_ms=250)


def signers(n: int, real: bool = False) -> list[Signer]:
    if real:
        return [Ed25519Signer(SigningKey.from_seed(fake_public_key(i))) for i in range(n)]
    return [FakeSigner(fake_public_key(i)) for i in range(n)]


def verifier(real: bool = False) -> Verifier:
    return Ed25519Verifier() if real else FakeVerifier()


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


@dataclass
class CountingApp:
    """Proposes b'value h/r/tag'; values containing b'bad' are invalid. Counts validations."""

    tag: bytes = b"a"
    validations: list[bytes] = field(default_factory=list)

    def propose(self, height: int, round: int) -> bytes:
        return b"value %d/%d/%s" % (height, round, self.tag)

    def validate(self, height: int, value: bytes) -> bool:
        self.validations.append(value)
        return b"bad" not in value

    def value_hash(self, value: bytes) -> bytes:
        return value_hash(value)


@dataclass
class Cluster:
    """Keys of n validators and cores built over them (nothing is delivered by itself)."""

    n: int
    real: bool = False

    def __post_init__(self) -> None:
        self.signers = signers(self.n, self.real)
        self.keys = [s.public_key for s in self.signers]

    def core(
        self,
        index: int | None,
        app: CountingApp | None = None,
        last_signed: LastSigned | None = None,
    ) -> ConsensusCore:
        return ConsensusCore(
            CHAIN,
            self.keys,
            None if index is None else self.signers[index],
            app if app is not None else CountingApp(),
            TIMEOUTS,
            last_signed,
            verifier=verifier(self.real),
        )

    def proposer_index(self, height: int, round: int) -> int:
        return (height + round) % self.n

    def vote(
        self, index: int, kind: VoteType, height: int, round: int, block_hash: bytes = NIL
    ) -> Vote:
        signature = self.signers[index].sign(
            VOTE_TAG, vote_sign_bytes(PREFIX, kind, height, round, block_hash)
        )
        return Vote(kind, height, round, block_hash, self.keys[index], signature)

    def proposal(self, height: int, round: int, value: bytes, valid_round: int = -1) -> Proposal:
        index = self.proposer_index(height, round)
        block_hash = value_hash(value)
        signature = self.signers[index].sign(
            PROPOSAL_TAG, proposal_sign_bytes(PREFIX, height, round, valid_round, block_hash)
        )
        return Proposal(height, round, valid_round, block_hash, value, self.keys[index], signature)

    def votes(
        self,
        indexes: Iterable[int],
        kind: VoteType,
        height: int,
        round: int,
        block_hash: bytes = NIL,
    ) -> list[Vote]:
        return [self.vote(i, kind, height, round, block_hash) for i in indexes]


def feed(core: ConsensusCore, messages: Iterable[Message]) -> list[Effect]:
    effects: list[Effect] = []
    for message in messages:
        effects += core.on_message(message)
    return effects


def sent(effects: Sequence[Effect]) -> list[Message]:
    return [e.message for e in effects if isinstance(e, Broadcast)]


def sent_votes(effects: Sequence[Effect], kind: VoteType) -> list[Vote]:
    return [m for m in sent(effects) if isinstance(m, Vote) and m.type is kind]


def commits(effects: Sequence[Effect]) -> list[Commit]:
    return [e for e in effects if isinstance(e, Commit)]


def timeouts(effects: Sequence[Effect]) -> list[ScheduleTimeout]:
    return [e for e in effects if isinstance(e, ScheduleTimeout)]


def evidence(effects: Sequence[Effect]) -> list[EvidenceFound]:
    return [e for e in effects if isinstance(e, EvidenceFound)]


def persisted(effects: Sequence[Effect]) -> list[LastSigned]:
    return [LastSigned.from_bytes(e.record) for e in effects if isinstance(e, PersistLastSigned)]
