"""`spark resolve|history|list|status`: reads over the public gRPC API.

`resolve --verify` trusts no node: it checks the record (or its absence) against the state
root, and the header holding that root against a quorum of the genesis validators. The
genesis comes from --genesis FILE, or from the node once and is then pinned in
$SPARK_HOME/pinned/<chain_id>.genesis.json; a node whose genesis differs from the pin is
refused loudly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sparkchain.cli.client import NodeClient, add_node_argument
from sparkchain.cli.output import add_json_argument, emit_json, emit_text
from sparkchain.cli.views import (
    history_entry_to_dict,
    record_lines,
    record_to_dict,
    status_lines,
    status_to_dict,
    time_text,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier, parse_prefix
from sparkchain.identifiers.limits import DEFAULT_LIST_PAGE_SIZE
from sparkchain.ledger.genesis import Genesis, genesis_to_json, parse_genesis
from sparkchain.ledger.records import filter_values
from sparkchain.node import keystore
from sparkchain.proto import types_pb2 as pb

PINNED_DIR_NAME = "pinned"


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    resolve = commands.add_parser("resolve", help="resolve an identifier (optionally verified)")
    resolve.add_argument("identifier")
    resolve.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="T",
        help="only values of type T",
    )
    resolve.add_argument(
        "--index",
        dest="indexes",
        action="append",
        default=[],
        type=int,
        metavar="I",
        help="only the value at index I",
    )
    resolve.add_argument(
        "--verify",
        action="store_true",
        help="check the answer against the genesis validators (trusting no node)",
    )
    resolve.add_argument(
        "--genesis", type=Path, metavar="FILE", help="genesis file to verify against"
    )
    resolve.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="with --verify: refuse an answer proven at a block older than this (a node "
        "can replay an old, genuine proof; only the block time bounds how old)",
    )
    resolve.add_argument(
        "--height",
        type=int,
        default=0,
        metavar="H",
        help="the record as block H left it (with --verify or --export: proven against "
        "block H, which a node that prunes its state tree refuses below the oldest "
        "height it keeps: HEIGHT_PRUNED)",
    )
    resolve.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the whole record (or its absence) with its proof as a proof bundle "
        "(docs/proof-bundle.md), verified first; check it later with `spark verify`",
    )
    add_node_argument(resolve)
    add_json_argument(resolve)
    resolve.set_defaults(handler=_resolve)

    history = commands.add_parser("history", help="every change of an identifier")
    history.add_argument("identifier")
    history.add_argument("--limit", type=int, default=0, help="at most this many entries")
    add_node_argument(history)
    add_json_argument(history)
    history.set_defaults(handler=_history)

    lst = commands.add_parser("list", help="identifiers registered under a prefix")
    lst.add_argument("prefix")
    lst.add_argument("--page-size", type=int, default=DEFAULT_LIST_PAGE_SIZE, metavar="N")
    lst.add_argument("--page-token", default="", metavar="TOKEN", help="continue a listing")
    lst.add_argument("--all", action="store_true", help="follow every page")
    add_node_argument(lst)
    add_json_argument(lst)
    lst.set_defaults(handler=_list)

    status = commands.add_parser("status", help="the node's chain, height and peers")
    add_node_argument(status)
    add_json_argument(status)
    status.set_defaults(handler=_status)


# ---- resolve ----


def _resolve(args: argparse.Namespace) -> int:
    parse_identifier(args.identifier)  # a malformed identifier never reaches the node
    if args.max_age is not None and not args.max_age >= 0:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "--max-age must be 0 or more seconds")
    if args.height < 0:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"--height must be 1 or more, got {args.height}"
        )
    with NodeClient.from_args(args) as client:
        if args.export is not None:
            return _export(client, args)
        if args.verify or args.genesis or args.max_age is not None:
            return _resolve_verified(client, args)
        response = client.resolve(args.identifier, args.types, args.indexes, height=args.height)
    _print_record(response.record, args.json, extra={"height": response.height})
    return 0


def _resolve_verified(client: NodeClient, args: argparse.Namespace) -> int:
    from sparkchain.ledger.proof import verify_resolution_header  # only verifying clients need it

    genesis = trusted_genesis(client, args.genesis)
    failed = f"verification FAILED for {args.identifier} from node {client.target}"
    try:
        response = client.resolve(args.identifier, with_proof=True, height=args.height)
    except SparkError as error:
        # a refusal claims nothing: the height is pruned there, or the node is unreachable
        if error.code in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.HEIGHT_PRUNED):
            raise
        # the node's own words (even "not registered"): nothing here is proven
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"{failed}: the node answered without a proof ({error.code}: {error.message})",
        ) from None
    try:
        record, header = verify_resolution_header(
            genesis.validator_keys,
            genesis.chain_id,
            args.identifier,
            response.proof,
            genesis.hash_fn,
        )
    except SparkError as error:
        raise SparkError(ErrorCode.INVALID_PROOF, f"{failed}: {error.message}") from None
    height = header.height
    if args.height and height != args.height:
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"{failed}: asked for height {args.height}, the proof is of block {height}",
        )
    age_s = max(0.0, time.time() - header.time_ms / 1000)
    if args.max_age is not None and age_s > args.max_age:
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"{failed}: the proof is of block {height} from {time_text(header.time_ms)}, "
            f"{age_s:.0f} s ago, older than --max-age {args.max_age:g} s (the node may be "
            "behind, or withholding newer blocks)",
        )
    # a node can only prove a state it was given, maybe an old one: say which block it is
    as_of = f"block time {time_text(header.time_ms)}, chain {genesis.chain_id!r}"
    if record is None:
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"{args.identifier} is not registered (absence verified at height {height}, {as_of})",
        )
    shown = filter_values(record, args.types, args.indexes)
    extra = {
        "height": height,
        "verified": True,
        "verified_time_ms": header.time_ms,
        "chain_id": genesis.chain_id,
    }
    _print_record(shown, args.json, extra=extra)
    if not args.json:
        emit_text(f"state as of {as_of} ({age_s:.0f} s ago)")
        emit_text(f"verified at height {height}")
    return 0


def _export(client: NodeClient, args: argparse.Namespace) -> int:
    """Fetch the proof, make it a bundle, verify the bundle as `spark verify` will, and
    only then write it: a file that says "proof" is never one that fails."""
    from sparkchain.cli.verify_cmd import verified_lines, verified_to_dict
    from sparkchain.ledger.bundle import build_bundle, verify_bundle

    if args.types or args.indexes:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            "--export proves the whole record: --type and --index do not apply to it",
        )
    genesis = trusted_genesis(client, args.genesis)
    response = client.resolve(args.identifier, with_proof=True, height=args.height)
    bundle = build_bundle(genesis, args.identifier, response.proof)
    try:
        verified = verify_bundle(bundle, genesis)
    except SparkError as error:
        reason = getattr(error, "reason", error.code)
        raise SparkError(
            ErrorCode.INVALID_PROOF,
            f"node {client.target} answered with a proof that does not verify, nothing "
            f"written: {reason}: {error.message}",
        ) from None
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    try:
        args.export.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"{args.export}: cannot write: {exc}"
        ) from None
    if args.json:
        emit_json({"file": str(args.export), **verified_to_dict(verified)})
        return 0
    emit_text(f"wrote {args.export}")
    for line in verified_lines(verified):
        emit_text(line)
    return 0


def _print_record(record: pb.Record, as_json: bool, extra: dict[str, object]) -> None:
    if as_json:
        emit_json({**record_to_dict(record), **extra})
        return
    for line in record_lines(record):
        emit_text(line)


def pinned_genesis_path(chain_id: str) -> Path:
    return keystore.spark_home() / PINNED_DIR_NAME / f"{chain_id}.genesis.json"


def _read_genesis(path: Path) -> Genesis:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SparkError(ErrorCode.INVALID_GENESIS, f"{path}: cannot read: {exc}") from None
    return parse_genesis(data, str(path))


def trusted_genesis(client: NodeClient, genesis_file: Path | None) -> Genesis:
    """The genesis to verify against: the file given, or the node's genesis checked
    against (or, the first time, pinned as) $SPARK_HOME/pinned/<chain_id>.genesis.json."""
    if genesis_file is not None:
        genesis = _read_genesis(genesis_file)
        if genesis.chain_id != client.chain_id:
            raise SparkError(
                ErrorCode.WRONG_CHAIN,
                f"{genesis_file} is the genesis of chain {genesis.chain_id!r}, but node "
                f"{client.target} serves chain {client.chain_id!r}",
            )
        return genesis
    fetched = parse_genesis(client.genesis_json(), f"genesis from node {client.target}")
    if fetched.chain_id != client.chain_id:
        raise SparkError(
            ErrorCode.INVALID_GENESIS,
            f"node {client.target} reports chain {client.chain_id!r} but serves the genesis "
            f"of chain {fetched.chain_id!r}",
        )
    pin = pinned_genesis_path(fetched.chain_id)
    if pin.exists():
        pinned = _read_genesis(pin)
        if pinned.genesis_hash != fetched.genesis_hash:
            raise SparkError(
                ErrorCode.INVALID_GENESIS,
                f"node {client.target} serves a genesis for chain {fetched.chain_id!r} with "
                f"hash {fetched.genesis_hash.hex()}, but the pinned genesis {pin} has hash "
                f"{pinned.genesis_hash.hex()}: this node is on a different chain. Refusing "
                "to verify; delete the pin only if you know the chain was re-created",
            )
        return pinned
    pin.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pin.write_text(genesis_to_json(fetched), encoding="utf-8")
    emit_text(
        f"pinned the genesis of chain {fetched.chain_id!r} "
        f"(hash {fetched.genesis_hash.hex()[:16]}…) at {pin}; later verifications trust it",
        file=sys.stderr,
    )
    return fetched


# ---- history, list, status ----


def _history(args: argparse.Namespace) -> int:
    parse_identifier(args.identifier)
    with NodeClient.from_args(args) as client:
        entries = list(client.history(args.identifier, args.limit).entries)
    if args.json:
        emit_json([history_entry_to_dict(e) for e in entries])
        return 0
    for entry in entries:
        status = pb.RecordStatus.Name(entry.record.status)
        emit_text(
            f"height {entry.height:<8} {time_text(entry.time_ms)}  {entry.operation:<9} "
            f"by {entry.signer}  tx {entry.tx_id.hex()[:16]}  -> {status}, "
            f"owner {entry.record.owner}, {len(entry.record.values)} values"
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    parse_prefix(args.prefix)
    if args.page_size <= 0:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "--page-size must be positive")
    records: list[pb.Record] = []
    token = args.page_token
    with NodeClient.from_args(args) as client:
        while True:
            page = client.list_page(args.prefix, args.page_size, token)
            records.extend(page.records)
            token = page.next_page_token
            if not token or not args.all:
                break
            if not args.json:
                _print_list_rows(page.records)
                records.clear()
    if args.json:
        emit_json({"records": [record_to_dict(r) for r in records], "next_page_token": token})
        return 0
    _print_list_rows(records)
    if token:
        emit_text(f"(more: --page-token {token} or --all)", file=sys.stderr)
    return 0


def _print_list_rows(records: Sequence[pb.Record]) -> None:
    for record in records:
        status = "" if record.status == pb.ACTIVE else f"  [{pb.RecordStatus.Name(record.status)}]"
        urls = [v.data.decode("utf-8", "replace") for v in record.values if v.type == "URL"]
        emit_text(f"{record.identifier}  {urls[0] if urls else ''}{status}".rstrip())


def _status(args: argparse.Namespace) -> int:
    with NodeClient.from_args(args) as client:
        status = client.status()
    if args.json:
        emit_json({"node": client.target, **status_to_dict(status)})
    else:
        emit_text(f"node:       {client.target}")
        for line in status_lines(status):
            emit_text(line)
    return 0
