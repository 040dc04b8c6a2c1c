"""Prefix operations (DESIGN §4): CreatePrefix, SetRegistrars, TransferPrefix.

Each checks its fields, then that its target exists, then the signer, then the state
(the order is part of the rules: the model test holds us to it).
"""

from __future__ import annotations

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_prefix
from sparkchain.identifiers.limits import MAX_REGISTRARS_PER_PREFIX
from sparkchain.ledger.rules_ops import (
    TxContext,
    checked_bid,
    existing_prefix,
    require_prefix_owner,
)
from sparkchain.ledger.rules_state import TxScratch
from sparkchain.proto import types_pb2 as pb


def create_prefix(scratch: TxScratch, op: pb.CreatePrefix, context: TxContext) -> None:
    prefix = parse_prefix(op.prefix)
    owner = checked_bid(op.owner, "create_prefix.owner")
    # the owner of the nearest existing ancestor decides; with none, a root authority does
    parent = next(
        (found for p in prefix.ancestors() if (found := scratch.get_prefix(p.key)) is not None),
        None,
    )
    if parent is not None:
        require_prefix_owner(parent, context, f"create prefix {prefix.display} under it")
    elif context.signer not in context.root_authorities:
        raise SparkError(
            ErrorCode.UNAUTHORIZED,
            f"prefix {prefix.display} has no existing parent prefix; only a genesis root "
            f"authority may create it, signer is {context.signer}",
        )
    already = scratch.get_prefix(prefix.key)
    if already is not None:
        raise SparkError(ErrorCode.EXISTS, f"prefix {prefix.display} exists (as {already.prefix})")
    scratch.put_prefix(
        prefix.key,
        pb.PrefixRecord(
            prefix=prefix.display,
            key=prefix.key,
            owner=owner,
            created_height=context.height,
            updated_height=context.height,
        ),
    )


def set_registrars(scratch: TxScratch, op: pb.SetRegistrars, context: TxContext) -> None:
    prefix = parse_prefix(op.prefix)
    add = {checked_bid(b, f"set_registrars.add[{i}]") for i, b in enumerate(op.add)}
    remove = {checked_bid(b, f"set_registrars.remove[{i}]") for i, b in enumerate(op.remove)}
    if not add and not remove:
        raise SparkError(ErrorCode.INVALID_TX, "set_registrars neither adds nor removes any BID")
    both = add & remove
    if both:
        raise SparkError(
            ErrorCode.INVALID_TX, f"BID {min(both)} is both added and removed as a registrar"
        )
    current = existing_prefix(scratch, prefix)
    require_prefix_owner(current, context, "change its registrars")
    registrars = (set(current.registrars) - remove) | add
    if len(registrars) > MAX_REGISTRARS_PER_PREFIX:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"prefix {current.prefix} would have {len(registrars)} registrars, "
            f"at most {MAX_REGISTRARS_PER_PREFIX} allowed",
        )
    changed = pb.PrefixRecord()
    changed.CopyFrom(current)
    del changed.registrars[:]
    changed.registrars.extend(sorted(registrars))
    changed.updated_height = context.height
    scratch.put_prefix(current.key, changed)


def transfer_prefix(scratch: TxScratch, op: pb.TransferPrefix, context: TxContext) -> None:
    prefix = parse_prefix(op.prefix)
    new_owner = checked_bid(op.new_owner, "transfer_prefix.new_owner")
    current = existing_prefix(scratch, prefix)
    require_prefix_owner(current, context, "transfer it")
    changed = pb.PrefixRecord()
    changed.CopyFrom(current)
    changed.owner = new_owner
    changed.updated_height = context.height
    scratch.put_prefix(current.key, changed)
