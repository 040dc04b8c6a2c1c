"""The consensus messages, timer events and effects, as plain frozen dataclasses.

These are the core's own types (cheap to build and compare); `consensus.wire` converts them
to and from the protobuf messages that travel between nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

NIL = b""
"""The block hash of a vote for nothing ("nil" in the paper)."""


class VoteType(IntEnum):
    # values match proto VoteType, and are the "kind" byte of the sign bytes
    PREVOTE = 1
    PRECOMMIT = 2


class Step(IntEnum):
    """The step of a round (paper: step_p), also the order in which a signer signs."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2
    ROUND = 3  # a timer only, never signed: the whole round has lasted too long


@dataclass(frozen=True, slots=True)
class Vote:
    type: VoteType
    height: int
    round: int
    block_hash: bytes  # NIL for a vote for nothing
    validator: bytes  # public key
    signature: bytes


@dataclass(frozen=True, slots=True)
class Proposal:
    height: int
    round: int
    valid_round: int  # -1: none (paper: vr)
    block_hash: bytes  # Application.value_hash(value); the signature covers this, not value
    value: bytes
    proposer: bytes
    signature: bytes


Message = Proposal | Vote


@dataclass(frozen=True, slots=True)
class CommitSig:
    validator: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """A quorum of distinct validators' precommits for one (height, round, block_hash)."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSig, ...]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different votes signed by one validator for the same (height, round, type)."""

    first: Vote
    second: Vote


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timer the driver must fire back at the core (paper: OnTimeoutPropose/...)."""

    height: int
    round: int
    step: Step


# ---- effects: what the driver must do, in list order ----


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Message


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    timeout: Timeout
    delay_ms: int


@dataclass(frozen=True, slots=True)
class PersistLastSigned:
    """Write `record` durably (fsync) before executing any later effect of the list."""

    record: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    height: int
    value: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    evidence: Evidence


Effect = Broadcast | ScheduleTimeout | PersistLastSigned | Commit | EvidenceFound
