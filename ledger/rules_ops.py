"""What every operation of the rules shares: the tx context and the authorisation checks."""

from __future__ import annotations

from dataclasses import dataclass

from sparkchain.identifiers.bid import parse_bid
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import Identifier, Prefix
from sparkchain.ledger.rules_state import TxScratch
from sparkchain.proto import types_pb2 as pb


@dataclass(frozen=True, slots=True)
class TxContext:
    signer: str  # the signer's BID
    height: int  # of the block being executed
    time_ms: int  # of the block being executed
    root_authorities: frozenset[str]  # genesis BIDs that may create top-level prefixes


def checked_bid(text: str, field: str) -> str:
    """`text` when it is a valid BID; INVALID_BID naming the field otherwise."""
    if not text:
        raise SparkError(ErrorCode.INVALID_BID, f"{field} is empty, a BID is required")
    try:
        parse_bid(text)
    except SparkError as exc:
        raise SparkError(ErrorCode.INVALID_BID, f"{field}: {exc.message}") from None
    return text


def existing_prefix(scratch: TxScratch, prefix: Prefix) -> pb.PrefixRecord:
    found = scratch.get_prefix(prefix.key)
    if found is None:
        raise SparkError(ErrorCode.NOT_FOUND, f"prefix {prefix.display} does not exist")
    return found


def existing_record(scratch: TxScratch, identifier: Identifier) -> pb.Record:
    found = scratch.get_record(identifier.key)
    if found is None:
        raise SparkError(ErrorCode.NOT_FOUND, f"identifier {identifier.display} does not exist")
    return found


def require_prefix_owner(prefix: pb.PrefixRecord, context: TxContext, action: str) -> None:
    if context.signer != prefix.owner:
        raise SparkError(
            ErrorCode.UNAUTHORIZED,
            f"only the owner of prefix {prefix.prefix} ({prefix.owner}) may {action}; "
            f"signer is {context.signer}",
        )


def require_registrant(prefix: pb.PrefixRecord, context: TxContext) -> None:
    """DESIGN §4: the prefix owner or one of its registrars may register under it."""
    if context.signer != prefix.owner and context.signer not in prefix.registrars:
        raise SparkError(
            ErrorCode.UNAUTHORIZED,
            f"signer {context.signer} is neither the owner nor a registrar of prefix "
            f"{prefix.prefix}",
        )


def require_record_controller(
    scratch: TxScratch, record: pb.Record, identifier: Identifier, context: TxContext, action: str
) -> None:
    """DESIGN §4: the record owner or the owner of the identifier's prefix."""
    if context.signer == record.owner:
        return
    prefix = scratch.get_prefix(identifier.prefix.key)
    if prefix is not None and context.signer == prefix.owner:
        return
    raise SparkError(
        ErrorCode.UNAUTHORIZED,
        f"only the owner of {record.identifier} or of its prefix may {action}; "
        f"signer is {context.signer}",
    )


def require_active(record: pb.Record, action: str) -> None:
    if record.status == pb.REVOKED:
        raise SparkError(
            ErrorCode.REVOKED, f"{record.identifier} is revoked and cannot be {action}"
        )
