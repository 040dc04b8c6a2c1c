"""`spark verify FILE --genesis genesis.json`: check a proof bundle offline.

No node is asked anything: the bundle (docs/proof-bundle.md; written by `spark resolve
--export` or served by GET /api/handles/{id}?proof=true) is checked against the genesis
file alone. Exit 0 when it verifies, 1 when it does not (the reason and what failed are
printed), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sparkchain.cli.output import add_json_argument, emit_json, emit_text
from sparkchain.cli.views import record_lines, record_to_dict, time_text
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_BUNDLE_JSON_BYTES
from sparkchain.ledger.bundle import Verified, parse_bundle_json, verify_bundle
from sparkchain.ledger.genesis import Genesis, parse_genesis
from sparkchain.ledger.proof import ProofError

EXIT_VERIFIED = 0
EXIT_REFUSED = 1


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    verify = commands.add_parser(
        "verify", help="check a proof bundle offline against a genesis file"
    )
    verify.add_argument("file", type=Path, help="the proof bundle (JSON)")
    verify.add_argument(
        "--genesis",
        type=Path,
        required=True,
        metavar="FILE",
        help="the genesis file of the chain: the only thing trusted",
    )
    add_json_argument(verify)
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    genesis = read_genesis(args.genesis)
    data = _read_bounded(args.file)
    try:
        verified = verify_bundle(parse_bundle_json(data), genesis)
    except ProofError as error:
        if args.json:
            emit_json({"verified": False, "file": str(args.file), **failure_to_dict(error)})
        else:
            emit_text(
                f"verification FAILED for {args.file}: {error.reason}: {error.message}",
                file=sys.stderr,
            )
        return EXIT_REFUSED
    if args.json:
        emit_json({"verified": True, "file": str(args.file), **verified_to_dict(verified)})
    else:
        for line in verified_lines(verified):
            emit_text(line)
    return EXIT_VERIFIED


def read_genesis(path: Path) -> Genesis:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SparkError(ErrorCode.INVALID_GENESIS, f"{path}: cannot read: {exc}") from None
    return parse_genesis(data, str(path))


def _read_bounded(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(MAX_BUNDLE_JSON_BYTES + 1)
    except OSError as exc:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"{path}: cannot read: {exc}") from None


def failure_to_dict(error: ProofError) -> dict[str, Any]:
    return {"reason": str(error.reason), "message": error.message}


def verified_to_dict(verified: Verified) -> dict[str, Any]:
    record = verified.record
    return {
        "identifier": verified.identifier,
        "chain_id": verified.chain_id,
        "height": verified.height,
        "time_ms": verified.time_ms,
        "block_hash": verified.block_hash.hex(),
        "signers": verified.signers,
        "validators": verified.validators,
        "present": record is not None,
        "record": None if record is None else record_to_dict(record),
    }


def verified_lines(verified: Verified) -> list[str]:
    """What a person reads: who vouches for which state, then the record (or its absence)."""
    by = f"by {verified.signers} of {verified.validators} validators"
    as_of = f"block time {time_text(verified.time_ms)}, chain {verified.chain_id!r}"
    if verified.record is None:
        return [
            f"verified absent at height {verified.height} {by}: {verified.identifier} "
            f"is not registered ({as_of})"
        ]
    return [
        f"verified at height {verified.height} {by} ({as_of})",
        *record_lines(verified.record),
    ]
