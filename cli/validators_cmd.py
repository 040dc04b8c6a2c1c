"""`spark validators propose|sign|submit|list`: change the validator set (DESIGN §12).

A change is one governance tx: the body (an UpdateValidators, no signer) is written once by
`propose` into a proposal file; each operator adds their validator's approval with `sign`
(offline: only the file and the key file); anyone then `submit`s it, and the chain accepts
it with approvals of a quorum (⌊2n/3⌋ + 1) of the current validators. The new set signs
from two heights after the block that holds it.

The proposal file (JSON, version 1):

    {"format": "spark-validators-proposal", "version": 1, "chain_id": "...",
     "body": "<base64 of the canonical TxBody>", "expires_at_ms": ...,
     "update": {...the change, for humans; the body is what is signed...},
     "approvals": [{"validator": "<64 hex>", "signature": "<128 hex>"}]}

The body expires (`--lifetime-minutes`, at most 60: the chain refuses a tx that expires
more than an hour after its block), so collect the approvals and submit within that time.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import secrets
from pathlib import Path
from typing import Any

from sparkchain.cli.client import NodeClient, add_node_argument, load_signing_key, now_ms
from sparkchain.cli.output import add_json_argument, emit_json, emit_text
from sparkchain.cli.write_cmds import submit_and_report
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.limits import DEFAULT_SUBMIT_WAIT_MS, MAX_TX_EXPIRY_AHEAD_MS
from sparkchain.identifiers.tx import (
    approve_body,
    check_governance_tx,
    decode_body,
    governance_body,
)
from sparkchain.proto import types_pb2 as pb

PROPOSAL_FORMAT = "spark-validators-proposal"
PROPOSAL_VERSION = 1
MAX_PROPOSAL_FILE_BYTES = 1024 * 1024
DEFAULT_LIFETIME_MINUTES = 55
_ADD = re.compile(r"([^=]+)=([0-9a-fA-F]{64})(?:@(.+))?")
_ROTATE = re.compile(r"([^=]+)=([0-9a-fA-F]{64})")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = commands.add_parser("validators", help="list and change the validator set")
    sub = group.add_subparsers(dest="validators_command", metavar="COMMAND")
    sub.required = True

    propose = sub.add_parser("propose", help="write a proposal to change the validator set")
    propose.add_argument(
        "--add", action="append", default=[], metavar="NAME=PUBKEY@HOST:PORT",
        help="add a validator (its 64-hex public key and the peer address it listens on)",
    )  # fmt: skip
    propose.add_argument("--remove", action="append", default=[], metavar="NAME")
    propose.add_argument(
        "--rotate", action="append", default=[], metavar="NAME=PUBKEY",
        help="give validator NAME a new key",
    )  # fmt: skip
    propose.add_argument("--out", type=Path, required=True, help="the proposal file to write")
    propose.add_argument("--chain-id", help="the chain's id (default: asked from --node)")
    propose.add_argument(
        "--lifetime-minutes", type=int, default=DEFAULT_LIFETIME_MINUTES, metavar="MINUTES",
        help="how long the proposal stays valid (at most 60)",
    )  # fmt: skip
    add_node_argument(propose)
    propose.set_defaults(handler=_propose)

    sign = sub.add_parser("sign", help="add your validator's approval to a proposal file")
    sign.add_argument("file", type=Path, help="the proposal file (rewritten in place)")
    sign.add_argument("--key-file", type=Path, required=True, help="the validator's key (PEM)")
    sign.set_defaults(handler=_sign, key=None)

    submit = sub.add_parser("submit", help="submit an approved proposal to the chain")
    submit.add_argument("file", type=Path, help="the proposal file")
    add_node_argument(submit)
    submit.add_argument("--no-wait", action="store_true", help="return once admitted")
    submit.add_argument(
        "--timeout", type=float, default=DEFAULT_SUBMIT_WAIT_MS / 1000, metavar="SECONDS",
        help="how long to wait",
    )  # fmt: skip
    add_json_argument(submit)
    submit.set_defaults(handler=_submit)

    listing = sub.add_parser("list", help="the validators that sign a height")
    listing.add_argument(
        "--height", type=int, default=0, help="the height (default: the next one to decide)"
    )
    add_node_argument(listing)
    add_json_argument(listing)
    listing.set_defaults(handler=_list)


# ---- propose ----


def parse_update(add: list[str], remove: list[str], rotate: list[str]) -> pb.UpdateValidators:
    """The change from the command line; every malformed item is INVALID_ARGUMENT."""
    update = pb.UpdateValidators(remove=remove)
    for item in add:
        match = _ADD.fullmatch(item)
        if match is None:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT,
                f"--add {item!r}: expected NAME=PUBKEY@HOST:PORT (PUBKEY: 64 hex characters)",
            )
        name, key, address = match.groups()
        update.add.add(name=name, public_key=bytes.fromhex(key), address=address or "")
    for item in rotate:
        match = _ROTATE.fullmatch(item)
        if match is None:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT,
                f"--rotate {item!r}: expected NAME=PUBKEY (PUBKEY: 64 hex characters)",
            )
        update.rotate.add(name=match.group(1), public_key=bytes.fromhex(match.group(2)))
    if not update.add and not update.remove and not update.rotate:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, "give at least one --add, --remove or --rotate"
        )
    return update


def _propose(args: argparse.Namespace) -> int:
    update = parse_update(args.add, args.remove, args.rotate)
    lifetime_ms = args.lifetime_minutes * 60_000
    if not 0 < lifetime_ms <= MAX_TX_EXPIRY_AHEAD_MS:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"--lifetime-minutes must be 1 to {MAX_TX_EXPIRY_AHEAD_MS // 60_000}",
        )
    chain_id = args.chain_id
    if chain_id is None:
        with NodeClient.from_args(args) as client:
            chain_id = client.chain_id
    expires_at_ms = now_ms() + lifetime_ms
    body = governance_body(chain_id, secrets.randbits(64), expires_at_ms, update)
    _write(args.out, _proposal(chain_id, body, expires_at_ms, update, []))
    emit_text(f"wrote {args.out}: sign it with `spark validators sign {args.out} --key-file ...`")
    return 0


def _proposal(
    chain_id: str,
    body: bytes,
    expires_at_ms: int,
    update: pb.UpdateValidators,
    approvals: list[pb.Approval],
) -> dict[str, Any]:
    return {
        "format": PROPOSAL_FORMAT,
        "version": PROPOSAL_VERSION,
        "chain_id": chain_id,
        "body": base64.b64encode(body).decode("ascii"),
        "expires_at_ms": expires_at_ms,
        "update": {
            "add": [
                {"name": a.name, "public_key": a.public_key.hex(), "address": a.address}
                for a in update.add
            ],
            "remove": list(update.remove),
            "rotate": [{"name": r.name, "public_key": r.public_key.hex()} for r in update.rotate],
        },
        "approvals": [
            {"validator": a.validator.hex(), "signature": a.signature.hex()} for a in approvals
        ],
    }


def _write(path: Path, proposal: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(proposal, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"{path}: cannot write: {exc.strerror or exc}"
        ) from None


# ---- reading a proposal ----


def read_proposal(path: Path) -> tuple[pb.SignedTx, pb.TxBody]:
    """The governance tx in a proposal file, its form and signatures checked (a quorum is
    the chain's to judge); errors name the file and the field."""

    def bad(field: str, problem: str) -> SparkError:
        return SparkError(ErrorCode.INVALID_ARGUMENT, f"{path}: {field}: {problem}")

    try:
        raw = path.read_bytes()[: MAX_PROPOSAL_FILE_BYTES + 1]
    except OSError as exc:
        raise SparkError(
            ErrorCode.NOT_FOUND, f"{path}: cannot read: {exc.strerror or exc}"
        ) from None
    if len(raw) > MAX_PROPOSAL_FILE_BYTES:
        raise bad("file", f"larger than {MAX_PROPOSAL_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad("file", f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != PROPOSAL_FORMAT:
        raise bad("format", f"not a {PROPOSAL_FORMAT} file")
    if data.get("version") != PROPOSAL_VERSION:
        raise bad("version", f"{data.get('version')!r}, this spark reads {PROPOSAL_VERSION}")
    body_text = data.get("body")
    approvals = data.get("approvals")
    if not isinstance(body_text, str):
        raise bad("body", "missing or not a string")
    if not isinstance(approvals, list):
        raise bad("approvals", "missing or not a list")
    try:
        body = base64.b64decode(body_text, validate=True)
    except binascii.Error:
        raise bad("body", "not base64") from None
    signed = pb.SignedTx(body=body)
    for number, item in enumerate(approvals):
        try:
            validator = bytes.fromhex(item["validator"])
            signature = bytes.fromhex(item["signature"])
        except (TypeError, KeyError, ValueError):
            raise bad(f"approvals[{number}]", "needs hex validator and signature") from None
        signed.approvals.add(validator=validator, signature=signature)
    try:
        checked = check_governance_tx(signed, data.get("chain_id"), verify_signatures=True)
    except SparkError as error:
        if error.code is ErrorCode.NO_QUORUM:  # no approval yet: fine for `sign`
            return signed, decode_body(signed.body)
        raise SparkError(error.code, f"{path}: {error.message}") from None
    return signed, checked


# ---- sign, submit, list ----


def _sign(args: argparse.Namespace) -> int:
    key = load_signing_key(args)
    if not isinstance(key, SigningKey):
        raise SparkError(
            ErrorCode.INVALID_KEY, "validators sign with their Ed25519 key; this is an SM2 key"
        )
    signed, body = read_proposal(args.file)
    kept = [a for a in signed.approvals if a.validator != key.public_key]
    kept.append(approve_body(signed.body, key))
    _write(
        args.file,
        _proposal(body.chain_id, signed.body, body.expires_at_ms, body.update_validators, kept),
    )
    emit_text(
        f"{args.file}: approved by {key.public_key.hex()} ({len(kept)} approval"
        f"{'' if len(kept) == 1 else 's'})"
    )
    return 0


def _submit(args: argparse.Namespace) -> int:
    signed, _ = read_proposal(args.file)
    if not signed.approvals:
        raise SparkError(ErrorCode.NO_QUORUM, f"{args.file}: no validator approved it yet")
    with NodeClient.from_args(args) as client:
        return submit_and_report(client, signed, args, "validator set change committed")


def _list(args: argparse.Namespace) -> int:
    if args.height < 0:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "--height must be at least 1")
    with NodeClient.from_args(args) as client:
        response = client.validators(args.height)
    members = [
        {"name": v.name, "public_key": v.public_key.hex(), "address": v.address}
        for v in response.validators
    ]
    if args.json:
        emit_json({"height": response.height, "validators": members})
        return 0
    emit_text(f"validators of height {response.height} ({len(members)}):")
    for member in members:
        where = f"  {member['address']}" if member["address"] else ""
        emit_text(f"  {member['name']}  {member['public_key']}{where}")
    return 0
