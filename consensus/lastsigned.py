"""The signer's memory: what it signed last, so that it never signs two different messages
for one (height, round, step), even after a restart.

The record also carries the lock of its height (paper: lockedRound_p, lockedValue_p) with
the quorum of prevotes that justified it:
- without the lock, a validator restarted after precommitting v could help a second value
  reach a quorum after v was decided (safety);
- without the value and its prevotes, validators that all restarted locked on a value no
  one still holds would refuse every other value forever (liveness: the simulator found
  this with a cluster that restarted as a whole). With them, a locked proposer proposes
  the value again with its valid round, and its peers accept it by line 28;
- without the signed proposal of the locked round, a correct peer that took a faulty
  validator's nil prevote first keeps that validator's later prevote for the value only
  if the round's proposal is in its log (core `_second_vote`): after the lock holders
  restarted nobody held that proposal any more, the peer never saw the polka, refused the
  re-proposal at line 28, and the height halted (an outside review's replay, kept as a
  regression test). The restart puts the proposal back in the round's log and the relay
  carries it again.
The node writes `to_bytes()` durably (fsync) when the core returns PersistLastSigned, before
it sends the message that the record covers. The record is small except between a lock and
the end of its height, when it holds that block.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import Enum
from typing import Final

from sparkchain.consensus.crypto import Signer
from sparkchain.consensus.messages import NIL, Proposal, Step, Vote, VoteType
from sparkchain.consensus.signbytes import proposal_sign_bytes, vote_sign_bytes
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import PROPOSAL_TAG, VOTE_TAG

_MAGIC: Final = b"SPLS\x03"
# version 2 had no proposal of the locked round: read for a node upgraded mid-height
_MAGIC_V2: Final = b"SPLS\x02"
_FIXED: Final = struct.Struct(">QIBiiB")  # height, round, step, valid_round, locked_round, n
_VOTE: Final = struct.Struct(">BQI")  # type, height, round
_LENGTH: Final = struct.Struct(">I")
_CRC: Final = struct.Struct(">I")
_LOCK_PROPOSAL: Final = struct.Struct(">Bi")  # present (0/1), valid_round


@dataclass(frozen=True, slots=True)
class Lock:
    """lockedRound_p and lockedValue_p (with its hash), the 2f+1 prevotes behind them, and
    the signed proposal of that round (its round, hash and value are the lock's)."""

    round: int = -1
    hash: bytes = NIL
    value: bytes = b""
    votes: tuple[Vote, ...] = ()
    proposal: Proposal | None = None


NO_LOCK: Final = Lock()


# the block hash of a record carried over to a rotated key: no block hash is 33 bytes, so
# `permission` never answers REPEAT for it
CARRIED_OVER_HASH: Final = b"\xff" * 33


@dataclass(frozen=True, slots=True)
class LastSigned:
    public_key: bytes
    height: int
    round: int
    step: Step
    block_hash: bytes  # what was signed (NIL for a nil vote)
    valid_round: int  # of a signed proposal; -1 for votes
    signature: bytes
    lock: Lock = NO_LOCK  # the signer's lock at `height`

    def carried_to(self, public_key: bytes) -> LastSigned:
        """The record for a validator's new key after a key rotation (DESIGN §12): the new
        key signs nothing at or before the old key's last (height, round, step), not even
        that very message again (it has no signature of it), and keeps the lock."""
        return LastSigned(
            public_key,
            self.height,
            self.round,
            self.step,
            CARRIED_OVER_HASH,
            self.valid_round,
            b"",
            self.lock,
        )

    def to_bytes(self) -> bytes:
        parts = [
            _MAGIC,
            _FIXED.pack(
                self.height,
                self.round,
                self.step,
                self.valid_round,
                self.lock.round,
                len(self.public_key),
            ),
            self.public_key,
            _short(self.block_hash),
            _short(self.signature),
            _short(self.lock.hash),
            _LENGTH.pack(len(self.lock.value)),
            self.lock.value,
            _LENGTH.pack(len(self.lock.votes)),
        ]
        for vote in self.lock.votes:
            parts += (
                _VOTE.pack(vote.type, vote.height, vote.round),
                _short(vote.block_hash),
                _short(vote.validator),
                _short(vote.signature),
            )
        proposal = self.lock.proposal
        if proposal is None:
            parts.append(_LOCK_PROPOSAL.pack(0, -1))
        else:
            parts += (
                _LOCK_PROPOSAL.pack(1, proposal.valid_round),
                _short(proposal.proposer),
                _short(proposal.signature),
            )
        body = b"".join(parts)
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, raw: bytes) -> LastSigned:
        """Parse a record; raises SparkError(STORAGE_CORRUPT) for anything but a whole one."""
        if len(raw) < len(_MAGIC) + _FIXED.size + _CRC.size or not raw.startswith(
            (_MAGIC, _MAGIC_V2)
        ):
            raise SparkError(ErrorCode.STORAGE_CORRUPT, "last-signed record: not a record")
        body, (crc,) = raw[: -_CRC.size], _CRC.unpack(raw[-_CRC.size :])
        if zlib.crc32(body) != crc:
            raise SparkError(ErrorCode.STORAGE_CORRUPT, "last-signed record: checksum mismatch")
        try:
            return _parse(body)
        except (IndexError, ValueError, struct.error) as exc:
            raise SparkError(ErrorCode.STORAGE_CORRUPT, f"last-signed record: {exc}") from exc


def _parse(body: bytes) -> LastSigned:
    at = len(_MAGIC)
    height, round_, step, valid_round, locked_round, key_len = _FIXED.unpack_from(body, at)
    at += _FIXED.size
    public_key = body[at : at + key_len]
    at += key_len
    block_hash, at = _read_short(body, at)
    signature, at = _read_short(body, at)
    locked_hash, at = _read_short(body, at)
    (value_len,) = _LENGTH.unpack_from(body, at)
    at += _LENGTH.size
    locked_value = body[at : at + value_len]
    at += value_len
    (count,) = _LENGTH.unpack_from(body, at)
    at += _LENGTH.size
    votes = []
    for _ in range(count):
        kind, vote_height, vote_round = _VOTE.unpack_from(body, at)
        at += _VOTE.size
        vote_hash, at = _read_short(body, at)
        validator, at = _read_short(body, at)
        vote_signature, at = _read_short(body, at)
        votes.append(
            Vote(VoteType(kind), vote_height, vote_round, vote_hash, validator, vote_signature)
        )
    proposal = None
    if body.startswith(_MAGIC):
        present, proposal_valid_round = _LOCK_PROPOSAL.unpack_from(body, at)
        at += _LOCK_PROPOSAL.size
        if present:
            proposer, at = _read_short(body, at)
            proposal_signature, at = _read_short(body, at)
            proposal = Proposal(
                height,
                locked_round,
                proposal_valid_round,
                locked_hash,
                locked_value,
                proposer,
                proposal_signature,
            )
    if at != len(body) or len(public_key) != key_len or len(locked_value) != value_len:
        raise ValueError("wrong length")
    if step > Step.PRECOMMIT:
        raise ValueError(f"step {step} is not a signing step")
    return LastSigned(
        public_key,
        height,
        round_,
        Step(step),
        block_hash,
        valid_round,
        signature,
        Lock(locked_round, locked_hash, locked_value, tuple(votes), proposal),
    )


def _short(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def _read_short(body: bytes, at: int) -> tuple[bytes, int]:
    length = body[at]
    value = body[at + 1 : at + 1 + length]
    if len(value) != length:
        raise IndexError("truncated field")
    return value, at + 1 + length


class Permission(Enum):
    SIGN = "sign"  # a new (height, round, step): sign it and persist the record first
    REPEAT = "repeat"  # exactly the last message signed: send its signature again
    REFUSE = "refuse"  # signing would equivocate or go backwards


def permission(
    last: LastSigned | None,
    height: int,
    round: int,
    step: Step,
    block_hash: bytes,
    valid_round: int,
) -> Permission:
    """May the signer sign this? Only strictly after the last (height, round, step) signed.

    Like Tendermint's private validator, the order is total, so a message for an earlier
    step is refused even when it would not conflict: the core never needs one.
    """
    if last is None:
        return Permission.SIGN
    here = (height, round, step)
    before = (last.height, last.round, last.step)
    if here > before:
        return Permission.SIGN
    if here == before and block_hash == last.block_hash and valid_round == last.valid_round:
        return Permission.REPEAT
    return Permission.REFUSE


class GuardedSigner:
    """The validator's key behind the rule above: it signs only what `permission` allows,
    and hands back the record that must be persisted before the message is sent."""

    __slots__ = ("_prefix", "_signer", "last")

    def __init__(self, signer: Signer, chain_prefix: bytes, last: LastSigned | None) -> None:
        self._signer = signer
        self._prefix = chain_prefix
        self.last = last

    @property
    def public_key(self) -> bytes:
        return self._signer.public_key

    def vote(
        self, kind: VoteType, height: int, round: int, block_hash: bytes, lock: Lock
    ) -> tuple[Vote, bytes | None] | None:
        """(the signed vote, the record to persist first or None), or None if refused."""
        step = Step.PREVOTE if kind is VoteType.PREVOTE else Step.PRECOMMIT
        message = vote_sign_bytes(self._prefix, kind, height, round, block_hash)
        signed = self._sign(VOTE_TAG, message, height, round, step, block_hash, -1, lock)
        if signed is None:
            return None
        signature, record = signed
        return Vote(kind, height, round, block_hash, self.public_key, signature), record

    def proposal(
        self,
        height: int,
        round: int,
        valid_round: int,
        value: bytes,
        block_hash: bytes,
        lock: Lock,
    ) -> tuple[Proposal, bytes | None] | None:
        message = proposal_sign_bytes(self._prefix, height, round, valid_round, block_hash)
        signed = self._sign(
            PROPOSAL_TAG, message, height, round, Step.PROPOSE, block_hash, valid_round, lock
        )
        if signed is None:
            return None
        signature, record = signed
        proposal = Proposal(
            height, round, valid_round, block_hash, value, self.public_key, signature
        )
        return proposal, record

    def _sign(
        self,
        tag: bytes,
        message: bytes,
        height: int,
        round: int,
        step: Step,
        block_hash: bytes,
        valid_round: int,
        lock: Lock,
    ) -> tuple[bytes, bytes | None] | None:
        """(the signature, the record to persist first or None on a repeat), or None if
        `permission` refuses."""
        allowed = permission(self.last, height, round, step, block_hash, valid_round)
        if allowed is Permission.REFUSE:
            return None
        if allowed is Permission.REPEAT:
            assert self.last is not None
            return self.last.signature, None
        signature = self._signer.sign(tag, message)
        self.last = LastSigned(
            self.public_key, height, round, step, block_hash, valid_round, signature, lock
        )
        return signature, self.last.to_bytes()
