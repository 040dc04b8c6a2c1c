"""The rules of the ledger (DESIGN §4): one function per operation, one error per violation.

`apply_tx(state, signed, body, height, time_ms, root_authorities=...)` is the state
transition for one tx. It checks, in this order, and raises the first violation found:

1. replay: the tx id is already in the ledger or earlier in this block -> DUPLICATE_TX
2. expiry: `expires_at_ms` before the block time, or more than MAX_TX_EXPIRY_AHEAD_MS
   after it -> EXPIRED
3. the operation (rules_prefixes.py, rules_records.py), each in the order:
   a. the form of its fields, without looking at the state (INVALID_*, TOO_LARGE, INVALID_TX)
   b. the target exists (NOT_FOUND) -- or, when creating, nothing (see c)
   c. the signer is authorised (UNAUTHORIZED)
   d. the state allows it (EXISTS, REVOKED, NOT_FOUND of a value index, TOO_LARGE of the
      resulting record)

A governance tx (UpdateValidators, DESIGN §12) has no signer: its envelope carries the
approvals of validators, and "authorised" is a quorum of the validators of the block's
height (ledger/validators.py holds its rule and the order of its checks).

A tx is all-or-nothing: the operation writes into a `TxScratch`, which reaches the state
only when every rule passed. The envelope (size, signature, chain id) is `check_envelope`,
which the ledger runs before `apply_tx` (signature verification may be skipped when it was
already done, e.g. by the mempool).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from google.protobuf.message import Message

from sparkchain.identifiers.accounts import check_signer
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.identifiers.limits import MAX_TX_EXPIRY_AHEAD_MS
from sparkchain.identifiers.tx import check_signed_tx, tx_id
from sparkchain.ledger import rules_prefixes, rules_records, validators
from sparkchain.ledger.rules_ops import TxContext
from sparkchain.ledger.rules_state import MemoryState, StateView, TxScratch
from sparkchain.proto import types_pb2 as pb

__all__ = [
    "MemoryState",
    "Receipt",
    "StateView",
    "apply_tx",
    "check_envelope",
    "check_expiry",
    "execute_tx",
]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one applied tx changed, for history entries, change events and the state tree.

    `records` and `prefixes` are every record and prefix the tx wrote, as they are after the
    tx, in the order written (a batch: item order). They are the very objects put into the
    state: do not mutate them.
    """

    tx_id: bytes
    operation: str  # the TxBody op: create_prefix, set_registrars, ..., update_validators
    signer: str  # the signer's BID ("" for a governance tx, which has approvals instead)
    height: int
    time_ms: int
    records: tuple[pb.Record, ...]
    prefixes: tuple[pb.PrefixRecord, ...]
    validator_schedule: pb.ValidatorSchedule | None = None  # written by update_validators


_Operation = Callable[[TxScratch, Any, TxContext], None]

OPERATIONS: dict[str, _Operation] = {
    "create_prefix": rules_prefixes.create_prefix,
    "set_registrars": rules_prefixes.set_registrars,
    "transfer_prefix": rules_prefixes.transfer_prefix,
    "register": rules_records.register,
    "register_batch": rules_records.register_batch,
    "update": rules_records.update,
    "transfer": rules_records.transfer,
    "revoke": rules_records.revoke,
}


# a BID costs a SHA-256 and a Base58 encoding (~40 us); signers repeat a lot
@lru_cache(maxsize=4096)
def _signer_bid(public_key: bytes) -> str:
    return bid_from_public_key(public_key)


# the txs of a block share their height, time and roots, and mostly their signers
@lru_cache(maxsize=256)
def _context(signer: str, height: int, time_ms: int, roots: frozenset[str]) -> TxContext:
    return TxContext(signer, height, time_ms, roots)


def _roots(root_authorities: Collection[str]) -> frozenset[str]:
    if isinstance(root_authorities, frozenset):
        return root_authorities
    if isinstance(root_authorities, tuple):
        return _roots_of_tuple(root_authorities)
    return frozenset(root_authorities)


@lru_cache(maxsize=16)
def _roots_of_tuple(root_authorities: tuple[str, ...]) -> frozenset[str]:
    return frozenset(root_authorities)


def check_envelope(signed: pb.SignedTx, chain_id: str, verify_signature: bool = True) -> pb.TxBody:
    """Size, canonical body, signer, signature and chain id of a SignedTx; returns its body.

    Raises TOO_LARGE, INVALID_TX, BAD_SIGNATURE or WRONG_CHAIN. With `verify_signature`
    False the signature's length is still checked but not the signature itself.
    """
    return check_signed_tx(signed, chain_id, verify_signature=verify_signature)


def check_expiry(expires_at_ms: int, block_time_ms: int) -> None:
    """A tx is valid in blocks timed from `expires_at_ms - 1 hour` to `expires_at_ms`."""
    if expires_at_ms < block_time_ms:
        raise SparkError(
            ErrorCode.EXPIRED,
            f"tx expired at {expires_at_ms} ms, before the block time {block_time_ms} ms",
        )
    if expires_at_ms > block_time_ms + MAX_TX_EXPIRY_AHEAD_MS:
        raise SparkError(
            ErrorCode.EXPIRED,
            f"tx expires at {expires_at_ms} ms, more than {MAX_TX_EXPIRY_AHEAD_MS} ms "
            f"after the block time {block_time_ms} ms (too far in the future)",
        )


def apply_tx(
    state: StateView,
    signed: pb.SignedTx,
    body: pb.TxBody,
    block_height: int,
    block_time_ms: int,
    *,
    root_authorities: Collection[str],
    genesis_validators: Sequence[tuple[str, bytes]],
    hash_fn: HashFunction = sha256,
    the_tx_id: bytes | None = None,
) -> Receipt:
    """Apply one tx whose envelope was checked; raise SparkError and change nothing if a
    rule is violated. `root_authorities` are the genesis BIDs that may create top-level
    prefixes; `genesis_validators` (name, key) sign every height until the set changes;
    `hash_fn` is the chain's hash (the tx id); `the_tx_id` is the tx's id when the caller
    computed it already (`tx_id(signed, hash_fn)`: hashing a 3 MB body takes 2 ms)."""
    if the_tx_id is None:
        the_tx_id = tx_id(signed, hash_fn)
    if state.has_tx(the_tx_id):
        raise SparkError(ErrorCode.DUPLICATE_TX, f"tx {the_tx_id.hex()} is already in the ledger")
    check_expiry(body.expires_at_ms, block_time_ms)
    if body.WhichOneof("op") == "update_validators":
        schedule = state.get_validator_schedule() or validators.genesis_schedule(genesis_validators)
        approvers = [approval.validator for approval in signed.approvals]
        changed = validators.update_validators(
            schedule, body.update_validators, approvers, block_height
        )
        state.put_validator_schedule(changed)
        state.add_tx(the_tx_id)
        return Receipt(
            the_tx_id, "update_validators", "", block_height, block_time_ms, (), (), changed
        )
    check_signer(body.signer, body.signer_algorithm)
    operation = body.WhichOneof("op")
    if operation is None or operation not in OPERATIONS:
        raise SparkError(ErrorCode.INVALID_TX, "tx body has no operation")
    signer = _signer_bid(body.signer)
    context = _context(signer, block_height, block_time_ms, _roots(root_authorities))
    scratch = TxScratch(state)
    op_message: Message = getattr(body, operation)
    OPERATIONS[operation](scratch, op_message, context)
    scratch.flush()
    state.add_tx(the_tx_id)
    return Receipt(
        tx_id=the_tx_id,
        operation=operation,
        signer=signer,
        height=block_height,
        time_ms=block_time_ms,
        records=tuple(scratch.records.values()),
        prefixes=tuple(scratch.prefixes.values()),
    )


def execute_tx(
    state: StateView,
    signed: pb.SignedTx,
    chain_id: str,
    block_height: int,
    block_time_ms: int,
    *,
    root_authorities: Collection[str],
    genesis_validators: Sequence[tuple[str, bytes]],
    verify_signature: bool = True,
    hash_fn: HashFunction = sha256,
) -> Receipt:
    """`check_envelope` then `apply_tx`: everything a block does with one tx."""
    body = check_envelope(signed, chain_id, verify_signature)
    return apply_tx(
        state,
        signed,
        body,
        block_height,
        block_time_ms,
        root_authorities=root_authorities,
        genesis_validators=genesis_validators,
        hash_fn=hash_fn,
    )
