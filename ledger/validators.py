"""Membership (DESIGN §12): which validators sign each height, and how the chain changes it.

The chain keeps a *schedule*: sets of validators, each signing every height from its
`from_height` on. The genesis validators sign from height 1. A governance tx
`UpdateValidators{add, remove, rotate}` committed in block H makes a new set that signs from
H + 2, so the set of every height is fixed two heights ahead: while block H is decided, the
set of H + 1 is already known (the header of H commits to it in `validators_hash`).

`update_validators(schedule, op, approvers, height)` is the rule. It checks, in this order
(the order of every rule, ledger/rules.py):

1. form: at least one change; each name 1..MAX_VALIDATOR_NAME_CHARS characters without outer
   spaces and named once in the op; keys 32 bytes; an address empty or HOST:PORT
   (INVALID_TX, DUPLICATE_VALIDATOR for a name added twice)
2. exists: every removed or rotated name is a validator of the latest scheduled set
   (NOT_FOUND)
3. authorised: the approvers include a quorum, ⌊2n/3⌋ + 1, of the n validators of H
   (NO_QUORUM); approvals by other keys count for nothing
4. state: at most ⌊(n−1)/3⌋ of the latest set's n removed at once, so that the quorums of
   two consecutive sets always share a correct validator (TOO_MANY_REMOVED); names and keys
   unique in the resulting set (DUPLICATE_VALIDATOR); 1..MAX_VALIDATORS validators
   (TOO_MANY_REMOVED for none, TOO_LARGE for too many)

The new set keeps the latest set's order, less the removed, with rotated keys in place, and
the added at the end (the order is the proposer order). Several updates in one block build
on each other and all take effect at H + 2.

The schedule is one leaf of the state tree (namespace TREE_VALIDATORS_NAMESPACE), written
the first time the set changes; until then it is absent and the genesis set signs every
height, so chains that never change their set keep the state roots they always had.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import PUBLIC_KEY_BYTES
from sparkchain.identifiers.limits import (
    MAX_VALIDATOR_ADDRESS_BYTES,
    MAX_VALIDATOR_NAME_CHARS,
    MAX_VALIDATORS,
)
from sparkchain.proto import types_pb2 as pb

# a change decided in block H applies from this many heights later (as CometBFT does)
SET_CHANGE_DELAY_HEIGHTS = 2
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")


def quorum_of(n: int) -> int:
    """⌊2n/3⌋ + 1 (DESIGN §6): never "2f+1 with f = 0" for n = 2 or 3."""
    return 2 * n // 3 + 1


def max_removed(n: int) -> int:
    """⌊(n−1)/3⌋: removing more could leave two consecutive quorums without a correct
    validator in common."""
    return (n - 1) // 3


def genesis_schedule(validators: Sequence[tuple[str, bytes]]) -> pb.ValidatorSchedule:
    """The schedule a chain starts with: its genesis validators sign from height 1."""
    first = pb.ScheduledSet(from_height=1, decided_height=0)
    for name, key in validators:
        first.validators.add(name=name, public_key=key)
    return pb.ValidatorSchedule(sets=[first])


def set_at(schedule: pb.ValidatorSchedule, height: int) -> Sequence[pb.ValidatorInfo]:
    """The validators that sign `height`, in proposer order, for a height from the first
    set's `from_height` on (the schedule keeps no older set: node/ledger_reads.py has them)."""
    chosen = schedule.sets[0]
    for scheduled in schedule.sets[1:]:
        if scheduled.from_height <= height:
            chosen = scheduled
    return chosen.validators


def keys_at(schedule: pb.ValidatorSchedule, height: int) -> tuple[bytes, ...]:
    return tuple(v.public_key for v in set_at(schedule, height))


def latest_set(schedule: pb.ValidatorSchedule) -> Sequence[pb.ValidatorInfo]:
    """The last set scheduled: what the next change starts from."""
    return schedule.sets[-1].validators


def encode_schedule(schedule: pb.ValidatorSchedule) -> bytes:
    return schedule.SerializeToString(deterministic=True)


def decode_schedule(raw: bytes, code: ErrorCode) -> pb.ValidatorSchedule:
    """A schedule read from storage (`code` STORAGE_CORRUPT) or a proof (INVALID_PROOF)."""
    schedule = pb.ValidatorSchedule()
    try:
        schedule.ParseFromString(raw)
    except DecodeError as exc:
        raise SparkError(code, f"validator schedule does not decode: {exc}") from None
    if not schedule.sets or any(not s.validators for s in schedule.sets):
        raise SparkError(code, "validator schedule holds an empty set")
    return schedule


def update_validators(
    schedule: pb.ValidatorSchedule,
    op: pb.UpdateValidators,
    approvers: Collection[bytes],
    height: int,
) -> pb.ValidatorSchedule:
    """The schedule after `op`, approved by `approvers` (keys whose signatures of the tx
    were checked), committed in block `height`; raises the first rule violated (module
    docstring) and returns a new schedule, leaving `schedule` as it was."""
    _check_form(op)
    base = list(latest_set(schedule))
    names = {v.name: v for v in base}
    for name in list(op.remove) + [r.name for r in op.rotate]:
        if name not in names:
            raise SparkError(ErrorCode.NOT_FOUND, f"validator {name!r} is not in the set")
    signing = keys_at(schedule, height)
    quorum = quorum_of(len(signing))
    counted = set(approvers) & set(signing)
    if len(counted) < quorum:
        outsiders = len(set(approvers) - counted)
        raise SparkError(
            ErrorCode.NO_QUORUM,
            f"approved by {len(counted)} of the {len(signing)} validators of height {height}, "
            f"a quorum is {quorum}"
            + (
                f" ({outsiders} approvals by keys outside the set do not count)"
                if outsiders
                else ""
            ),
        )
    bound = max_removed(len(base))
    if len(op.remove) > bound:
        raise SparkError(
            ErrorCode.TOO_MANY_REMOVED,
            f"removes {len(op.remove)} of {len(base)} validators, at most {bound} at once",
        )
    new_set = _apply(base, op)
    _check_unique(new_set)
    if len(new_set) > MAX_VALIDATORS:
        raise SparkError(
            ErrorCode.TOO_LARGE, f"{len(new_set)} validators, at most {MAX_VALIDATORS} allowed"
        )
    return _scheduled(schedule, new_set, height)


def _apply(base: list[pb.ValidatorInfo], op: pb.UpdateValidators) -> list[pb.ValidatorInfo]:
    removed = set(op.remove)
    rotated = {r.name: r.public_key for r in op.rotate}
    out: list[pb.ValidatorInfo] = []
    for validator in base:
        if validator.name in removed:
            continue
        key = rotated.get(validator.name, validator.public_key)
        out.append(pb.ValidatorInfo(name=validator.name, public_key=key, address=validator.address))
    out.extend(
        pb.ValidatorInfo(name=a.name, public_key=a.public_key, address=a.address) for a in op.add
    )
    return out


def _scheduled(
    schedule: pb.ValidatorSchedule, new_set: list[pb.ValidatorInfo], height: int
) -> pb.ValidatorSchedule:
    """Keep the sets still needed from height + 1 on; the new one signs from height + 2."""
    effective = height + SET_CHANGE_DELAY_HEIGHTS
    kept = [s for s in schedule.sets if s.from_height < effective]
    # of the sets that start at or before height + 1, only the last one still signs
    current = [s for s in kept if s.from_height <= height + 1][-1:]
    later = [s for s in kept if s.from_height > height + 1]
    out = pb.ValidatorSchedule()
    for scheduled in current + later:
        out.sets.add().CopyFrom(scheduled)
    out.sets.add(from_height=effective, validators=new_set, decided_height=height)
    return out


def _check_form(op: pb.UpdateValidators) -> None:
    if not op.add and not op.remove and not op.rotate:
        raise SparkError(ErrorCode.INVALID_TX, "update_validators changes nothing")
    named: set[str] = set()
    for field, name in (
        [("add", a.name) for a in op.add]
        + [("remove", n) for n in op.remove]
        + [("rotate", r.name) for r in op.rotate]
    ):
        _check_name(name, f"update_validators.{field}")
        if name in named:
            code = ErrorCode.DUPLICATE_VALIDATOR if field == "add" else ErrorCode.INVALID_TX
            raise SparkError(code, f"validator {name!r} is named twice in one update")
        named.add(name)
    for number, added in enumerate(op.add):
        _check_key(added.public_key, f"update_validators.add[{number}].public_key")
        _check_address(added.address, f"update_validators.add[{number}].address")
    for number, rotation in enumerate(op.rotate):
        _check_key(rotation.public_key, f"update_validators.rotate[{number}].public_key")


def _check_name(name: str, field: str) -> None:
    if not name or len(name) > MAX_VALIDATOR_NAME_CHARS or name != name.strip():
        raise SparkError(
            ErrorCode.INVALID_TX,
            f"{field}: validator name {name!r} must be 1-{MAX_VALIDATOR_NAME_CHARS} "
            "characters without outer spaces",
        )


def _check_key(key: bytes, field: str) -> None:
    if len(key) != PUBLIC_KEY_BYTES:
        raise SparkError(
            ErrorCode.INVALID_TX, f"{field} must be a {PUBLIC_KEY_BYTES}-byte public key"
        )


def _check_address(address: str, field: str) -> None:
    if not address:
        return
    if len(address.encode("utf-8")) > MAX_VALIDATOR_ADDRESS_BYTES:
        raise SparkError(
            ErrorCode.INVALID_TX, f"{field}: longer than {MAX_VALIDATOR_ADDRESS_BYTES} bytes"
        )
    match = _ADDRESS.fullmatch(address)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise SparkError(ErrorCode.INVALID_TX, f"{field}: {address!r} is not HOST:PORT")


def _check_unique(validators: Sequence[pb.ValidatorInfo]) -> None:
    names: set[str] = set()
    keys: dict[bytes, str] = {}
    for validator in validators:
        if validator.name in names:
            raise SparkError(
                ErrorCode.DUPLICATE_VALIDATOR, f"validator {validator.name!r} is in the set"
            )
        other = keys.get(validator.public_key)
        if other is not None:
            raise SparkError(
                ErrorCode.DUPLICATE_VALIDATOR,
                f"key {validator.public_key.hex()} of {validator.name!r} is already "
                f"validator {other!r}'s",
            )
        names.add(validator.name)
        keys[validator.public_key] = validator.name
