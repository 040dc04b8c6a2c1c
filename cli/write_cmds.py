"""`spark prefix create|show|registrars|transfer`, `spark register|update|transfer|revoke`.

Each write is one signed tx submitted to the node; the command waits for its commit and
prints the height (`--no-wait`: returns once the node admitted it).

Values: `--url URL` is a value of type URL; `--value TYPE=DATA` takes the next free index
from 1, `--value INDEX:TYPE=DATA` a chosen one; `--meta FILE.json` stores the JSON document
as a `spark.meta` value at index 2000 (then 2001, ...); `--template ID` names a metadata
template at index 1001, and the metadata is checked against it here, with the validators'
own rule (ledger/templates.py), before the tx is sent.
"""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkchain.cli.client import (
    NodeClient,
    add_key_arguments,
    add_node_argument,
    load_signing_key,
    now_ms,
)
from sparkchain.cli.output import add_json_argument, emit_json, emit_text, note
from sparkchain.cli.views import prefix_lines, prefix_to_dict
from sparkchain.identifiers.accounts import AccountKey
from sparkchain.identifiers.bid import bid_from_public_key, parse_bid
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import Identifier, parse_identifier, parse_prefix
from sparkchain.identifiers.limits import (
    DEFAULT_SUBMIT_WAIT_MS,
    FIRST_METADATA_VALUE_INDEX,
    TEMPLATE_VALUE_INDEX,
)
from sparkchain.identifiers.schemes import gs1_canonical_suffix
from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.ledger.records import META_VALUE_TYPE
from sparkchain.ledger.templates import TEMPLATE_REF_VALUE_TYPE, check_record_template
from sparkchain.proto import types_pb2 as pb

URL_TYPE = "URL"
_INDEXED_VALUE = re.compile(r"(\d+):([^=]+)=(.*)", re.DOTALL)
_VALUE = re.compile(r"([^=]+)=(.*)", re.DOTALL)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    prefix = commands.add_parser("prefix", help="create and manage identifier prefixes")
    sub = prefix.add_subparsers(dest="prefix_command", metavar="ACTION")
    sub.required = True

    create = sub.add_parser("create", help="create a prefix under one you own")
    create.add_argument("prefix")
    create.add_argument("--owner", metavar="BID", help="owner (default: the signing key)")
    write_options(create)
    create.set_defaults(handler=_prefix_create)

    show = sub.add_parser("show", help="a prefix's owner, registrars and children")
    show.add_argument("prefix")
    add_node_argument(show)
    add_json_argument(show)
    show.set_defaults(handler=_prefix_show)

    registrars = sub.add_parser("registrars", help="add or remove a prefix's registrars")
    registrars.add_argument("prefix")
    registrars.add_argument("--add", action="append", default=[], metavar="BID")
    registrars.add_argument("--remove", action="append", default=[], metavar="BID")
    write_options(registrars)
    registrars.set_defaults(handler=_prefix_registrars)

    transfer_prefix = sub.add_parser("transfer", help="give a prefix to a new owner")
    transfer_prefix.add_argument("prefix")
    transfer_prefix.add_argument("new_owner", metavar="NEW_OWNER_BID")
    write_options(transfer_prefix)
    transfer_prefix.set_defaults(handler=_prefix_transfer)

    reg = commands.add_parser("register", help="register an identifier with its values")
    reg.add_argument("identifier")
    _value_options(reg)
    reg.add_argument("--owner", metavar="BID", help="record owner (default: the signing key)")
    reg.add_argument(
        "--as-typed",
        action="store_true",
        help="register a GS1 key suffix (Digital Link URI, GTIN-12/13/14) as typed, not in "
        "the canonical form the Digital Link resolver looks up",
    )
    write_options(reg)
    reg.set_defaults(handler=_register)

    update = commands.add_parser("update", help="change an identifier's values")
    update.add_argument("identifier")
    _value_options(update)
    update.add_argument(
        "--remove-index", action="append", default=[], type=int, metavar="I", help="delete value I"
    )
    write_options(update)
    update.set_defaults(handler=_update)

    transfer = commands.add_parser("transfer", help="give an identifier to a new owner")
    transfer.add_argument("identifier")
    transfer.add_argument("new_owner", metavar="NEW_OWNER_BID")
    write_options(transfer)
    transfer.set_defaults(handler=_transfer)

    revoke = commands.add_parser("revoke", help="revoke an identifier (it stays resolvable)")
    revoke.add_argument("identifier")
    revoke.add_argument("--reason", default="", help="why (shown to resolvers)")
    write_options(revoke)
    revoke.set_defaults(handler=_revoke)


def write_options(parser: argparse.ArgumentParser) -> None:
    add_node_argument(parser)
    add_key_arguments(parser)
    parser.add_argument(
        "--no-wait", action="store_true", help="return once the node admitted the tx"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_SUBMIT_WAIT_MS / 1000,
        metavar="SECONDS",
        help="how long to wait",
    )
    add_json_argument(parser)


def _value_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", action="append", default=[], help="a URL value")
    parser.add_argument(
        "--value",
        action="append",
        default=[],
        metavar="[INDEX:]TYPE=DATA",
        help="a value (repeatable); without INDEX the next free index is used",
    )
    parser.add_argument(
        "--meta",
        action="append",
        default=[],
        type=Path,
        metavar="FILE.json",
        help=f"a JSON metadata document, stored as {META_VALUE_TYPE} at index "
        f"{FIRST_METADATA_VALUE_INDEX}+",
    )
    parser.add_argument(
        "--template",
        metavar="ID",
        help=f"name metadata template ID (a spark.template-ref value at index "
        f"{TEMPLATE_VALUE_INDEX}); the metadata is checked against it before it is sent",
    )


# ---- values ----


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """A value from the command line, before it has an index (index None: pick one)."""

    index: int | None
    type: str
    data: bytes


def parse_value_spec(text: str, where: str = "--value") -> ValueSpec:
    match = _INDEXED_VALUE.fullmatch(text)
    if match:
        index = int(match.group(1))
        if index <= 0:
            raise SparkError(ErrorCode.INVALID_VALUE, f"{where} {text!r}: index must be >= 1")
        return ValueSpec(index, match.group(2), match.group(3).encode("utf-8"))
    match = _VALUE.fullmatch(text)
    if not match or not match.group(1).strip():
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{where} {text!r}: expected TYPE=DATA or INDEX:TYPE=DATA (e.g. EMAIL=a@b.cn)",
        )
    return ValueSpec(None, match.group(1), match.group(2).encode("utf-8"))


def read_json_option(path: Path, option: str) -> Any:
    """The JSON document in the file an option names; errors name the option and file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"{option} {path}: cannot read: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise SparkError(ErrorCode.INVALID_VALUE, f"{option} {path}: not UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{option} {path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None


def compact_json(document: Any) -> bytes:
    """Compact and key-sorted, so the same document is always the same bytes on the ledger."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def read_meta(path: Path) -> bytes:
    document = read_json_option(path, "--meta")
    if not isinstance(document, dict):
        raise SparkError(ErrorCode.INVALID_VALUE, f"--meta {path}: must hold one JSON object")
    return compact_json(document)


def url_spec(url: str) -> ValueSpec:
    return ValueSpec(None, URL_TYPE, url.encode("utf-8"))


def value_specs(args: argparse.Namespace) -> tuple[list[ValueSpec], list[bytes]]:
    specs = [url_spec(url) for url in args.url]
    specs.extend(parse_value_spec(text) for text in args.value)
    return specs, [read_meta(path) for path in args.meta]


def assign_indexes(
    specs: Iterable[ValueSpec], metas: Iterable[bytes], taken: Iterable[int] = ()
) -> list[pb.Value]:
    """Chosen indexes first, then the free ones from 1 in command-line order; metadata
    documents from FIRST_METADATA_VALUE_INDEX."""
    specs = list(specs)
    used = set(taken)
    chosen: set[int] = set()
    for spec in specs:
        if spec.index is not None:
            if spec.index in chosen:
                raise SparkError(
                    ErrorCode.INVALID_VALUE,
                    f"index {spec.index} is given twice on the command line",
                )
            chosen.add(spec.index)
    used |= chosen
    out: list[pb.Value] = []
    next_index = 1
    for spec in specs:
        index = spec.index
        if index is None:
            while next_index in used:
                next_index += 1
            index = next_index
            used.add(index)
        out.append(value(index, spec.type, spec.data))
    meta_index = FIRST_METADATA_VALUE_INDEX
    for document in metas:
        while meta_index in used:
            meta_index += 1
        used.add(meta_index)
        out.append(value(meta_index, META_VALUE_TYPE, document))
    return sorted(out, key=lambda v: v.index)


def update_values(record: pb.Record, specs: list[ValueSpec], metas: list[bytes]) -> list[pb.Value]:
    """For `update`: a value without an index replaces the record's value of the same type
    (the lowest such index), else takes a free index; metadata replaces spark.meta."""
    by_type: dict[str, int] = {}
    for existing in sorted(record.values, key=lambda v: v.index):
        by_type.setdefault(existing.type, existing.index)
    placed: list[ValueSpec] = []
    replaced: set[int] = set()
    for spec in specs:
        if spec.index is None and spec.type in by_type and by_type[spec.type] not in replaced:
            replaced.add(by_type[spec.type])
            placed.append(ValueSpec(by_type[spec.type], spec.type, spec.data))
        else:
            placed.append(spec)
    meta_specs: list[ValueSpec] = []
    remaining_metas = list(metas)
    if remaining_metas and META_VALUE_TYPE in by_type:
        meta_specs.append(
            ValueSpec(by_type[META_VALUE_TYPE], META_VALUE_TYPE, remaining_metas.pop(0))
        )
    taken = {v.index for v in record.values}
    values = assign_indexes([*placed, *meta_specs], remaining_metas, taken - replaced)
    return values


def with_template_reference(values: list[pb.Value], template: str | None) -> list[pb.Value]:
    """`values` and, with --template, the reference to the template at index 1001."""
    if template is None:
        return values
    if any(v.index == TEMPLATE_VALUE_INDEX for v in values):
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"index {TEMPLATE_VALUE_INDEX} is given both by --value and by --template",
        )
    display = identifier_in_nfc(template)[0].display
    reference = value(TEMPLATE_VALUE_INDEX, TEMPLATE_REF_VALUE_TYPE, display.encode("utf-8"))
    return sorted([*values, reference], key=lambda v: v.index)


def check_template_on_node(client: NodeClient, values: list[pb.Value]) -> None:
    """TEMPLATE_MISMATCH (or NOT_FOUND of the template) before sending, as the validators
    would judge `values` against the template as the node has it now."""

    def find(key: str) -> pb.Record | None:
        try:
            return client.resolve(key).record
        except SparkError as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                return None
            raise

    check_record_template(values, find)


def check_bid(text: str, what: str) -> str:
    try:
        parse_bid(text)
    except SparkError as exc:
        raise SparkError(exc.code, f"{what} {text!r}: {exc.message}") from None
    return text


# ---- identifiers ----


def identifier_in_nfc(text: str) -> tuple[Identifier, bool]:
    """`text` parsed in Unicode NFC, and whether that changed it. The node refuses other
    forms (DESIGN §2: `e` + U+0301 and `é` would otherwise be two identifiers that look the
    same); what a keyboard or a file system wrote in NFD is meant as its NFC form."""
    normal = unicodedata.normalize("NFC", text)
    return parse_identifier(normal), normal != text


def identifier_to_sign(text: str) -> Identifier:
    """The identifier a write command signs, with a note when it is not `text` as typed."""
    identifier, normalised = identifier_in_nfc(text)
    if normalised:
        note(
            f"identifier normalised to Unicode NFC before signing: {text!a} -> "
            f"{identifier.display!a} ({identifier.display})"
        )
    return identifier


# ---- submitting ----


def submit_and_report(
    client: NodeClient, tx: pb.SignedTx, args: argparse.Namespace, done: str
) -> int:
    wait = not args.no_wait
    response = client.submit(tx, wait=wait, timeout_ms=int(args.timeout * 1000))
    if args.json:
        emit_json(
            {
                "tx_id": response.tx_id.hex(),
                "committed": response.committed,
                "height": response.height if response.committed else None,
                "index": response.index if response.committed else None,
            }
        )
    elif response.committed:
        emit_text(f"{done} at height {response.height} (tx {response.tx_id.hex()})")
    else:
        emit_text(f"submitted tx {response.tx_id.hex()} (not waiting for its commit)")
    return 0


def _signed_write(args: argparse.Namespace) -> tuple[NodeClient, AccountKey]:
    """A client and the signing key (loaded before any network call: a missing key fails
    fast)."""
    key = load_signing_key(args)
    return NodeClient.from_args(args), key


def sign_and_submit(
    args: argparse.Namespace, build: Callable[[TxBuilder], pb.SignedTx], done: str
) -> int:
    """The common write: load the key, build the tx with the node's chain id, submit it."""
    client, key = _signed_write(args)
    with client:
        return submit_and_report(client, build(client.tx_builder(key)), args, done)


def _prefix_create(args: argparse.Namespace) -> int:
    prefix = parse_prefix(args.prefix)
    client, key = _signed_write(args)
    owner = check_bid(args.owner, "--owner") if args.owner else bid_from_public_key(key.public_key)
    with client:
        tx = client.tx_builder(key).create_prefix(prefix.display, owner, now_ms=now_ms())
        return submit_and_report(client, tx, args, f"created prefix {prefix.display}")


def _prefix_show(args: argparse.Namespace) -> int:
    parse_prefix(args.prefix)
    with NodeClient.from_args(args) as client:
        info = client.prefix_info(args.prefix)
    children = list(info.children)
    if args.json:
        emit_json(prefix_to_dict(info.prefix, children))
    else:
        for line in prefix_lines(info.prefix, children):
            emit_text(line)
    return 0


def _prefix_registrars(args: argparse.Namespace) -> int:
    prefix = parse_prefix(args.prefix)
    if not args.add and not args.remove:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "give at least one --add BID or --remove BID")
    add = [check_bid(b, "--add") for b in args.add]
    remove = [check_bid(b, "--remove") for b in args.remove]
    return sign_and_submit(
        args,
        lambda b: b.set_registrars(prefix.display, add, remove, now_ms=now_ms()),
        f"updated the registrars of {prefix.display}",
    )


def _prefix_transfer(args: argparse.Namespace) -> int:
    prefix = parse_prefix(args.prefix)
    new_owner = check_bid(args.new_owner, "new owner")
    return sign_and_submit(
        args,
        lambda b: b.transfer_prefix(prefix.display, new_owner, now_ms=now_ms()),
        f"transferred prefix {prefix.display}",
    )


def gs1_canonical_identifier(text: str) -> str:
    """`text` with a GS1 key suffix in its canonical form (DESIGN §10), with a note when
    that changed it; a suffix that looks like a GS1 key but does not parse is kept as
    typed, with a note saying why it is not read as one."""
    identifier, _ = identifier_in_nfc(text)
    canonical = gs1_canonical_suffix(identifier.suffix)
    if canonical.problem is not None:
        note(
            f"suffix looks like a GS1 Digital Link but is not one ({canonical.problem.message});"
            " registering it as typed"
        )
    if canonical.suffix is None or canonical.suffix == identifier.suffix:
        return text
    registered = f"{identifier.prefix.display}/{canonical.suffix}"
    note(
        f"GS1 key registered in its canonical form {registered} (the form the Digital Link "
        "resolver looks up; --as-typed keeps it as typed)"
    )
    return registered


def _register(args: argparse.Namespace) -> int:
    typed = args.identifier if args.as_typed else gs1_canonical_identifier(args.identifier)
    identifier = identifier_to_sign(typed)
    specs, metas = value_specs(args)
    values = with_template_reference(assign_indexes(specs, metas), args.template)
    owner = check_bid(args.owner, "--owner") if args.owner else ""
    client, key = _signed_write(args)
    with client:
        check_template_on_node(client, values)
        tx = client.tx_builder(key).register(identifier.display, values, owner, now_ms=now_ms())
        return submit_and_report(client, tx, args, f"registered {identifier.display}")


def _update(args: argparse.Namespace) -> int:
    identifier = identifier_to_sign(args.identifier)
    specs, metas = value_specs(args)
    if not specs and not metas and not args.remove_index and args.template is None:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            "nothing to update: give --url, --value, --meta, --template or --remove-index",
        )
    client, key = _signed_write(args)
    with client:
        upsert: list[pb.Value] = []
        if specs or metas or args.template is not None:
            record = client.resolve(identifier.display).record
            upsert = update_values(record, specs, metas)
            if args.template is not None:
                others = [v for v in upsert if v.index != TEMPLATE_VALUE_INDEX]
                upsert = with_template_reference(others, args.template)
            _check_updated_template(client, record, upsert, args.remove_index)
        tx = client.tx_builder(key).update(
            identifier.display, upsert, args.remove_index, now_ms=now_ms()
        )
        return submit_and_report(client, tx, args, f"updated {identifier.display}")


def _check_updated_template(
    client: NodeClient, record: pb.Record, upsert: list[pb.Value], removed: list[int]
) -> None:
    """As the ledger does: an update that touches index 1001 or a metadata index makes the
    record's metadata follow its template as it is now."""
    replaced = set(removed) | {v.index for v in upsert}
    if not any(i == TEMPLATE_VALUE_INDEX or i >= FIRST_METADATA_VALUE_INDEX for i in replaced):
        return
    kept = [v for v in record.values if v.index not in replaced]
    check_template_on_node(client, sorted([*kept, *upsert], key=lambda v: v.index))


def _transfer(args: argparse.Namespace) -> int:
    identifier = identifier_to_sign(args.identifier)
    new_owner = check_bid(args.new_owner, "new owner")
    return sign_and_submit(
        args,
        lambda b: b.transfer(identifier.display, new_owner, now_ms=now_ms()),
        f"transferred {identifier.display}",
    )


def _revoke(args: argparse.Namespace) -> int:
    identifier = identifier_to_sign(args.identifier)
    return sign_and_submit(
        args,
        lambda b: b.revoke(identifier.display, args.reason, now_ms=now_ms()),
        f"revoked {identifier.display}",
    )
