"""`spark template create|update|show`: metadata templates (docs/templates.md).

A template is a record holding its JSON Schema as a `spark.template` value (index 1); the
schema is checked here against the supported subset before it is sent, with the same code
the validators run (ledger/templates.py). Records name a template with
`spark register … --template ID --meta FILE.json` (cli/write_cmds.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparkchain.cli.client import NodeClient, add_node_argument, now_ms
from sparkchain.cli.output import add_json_argument, emit_json, emit_text
from sparkchain.cli.write_cmds import (
    check_bid,
    compact_json,
    identifier_to_sign,
    read_json_option,
    sign_and_submit,
    write_options,
)
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier
from sparkchain.identifiers.tx import value
from sparkchain.ledger.templates import (
    TEMPLATE_VALUE_TYPE,
    parse_template,
    template_rule,
    template_value,
)
from sparkchain.proto import types_pb2 as pb

# where `spark template create` puts the schema; the ledger reads the lowest-indexed
# spark.template value of a record, wherever it is
TEMPLATE_SCHEMA_INDEX = 1


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    template = commands.add_parser("template", help="create and show metadata templates")
    sub = template.add_subparsers(dest="template_command", metavar="ACTION")
    sub.required = True

    create = sub.add_parser("create", help="register identifier ID as a metadata template")
    create.add_argument("identifier", metavar="ID")
    create.add_argument("--schema", required=True, type=Path, metavar="FILE.json")
    create.add_argument("--owner", metavar="BID", help="owner (default: the signing key)")
    write_options(create)
    create.set_defaults(handler=_create)

    update = sub.add_parser(
        "update", help="replace template ID's schema (records already written stay as they are)"
    )
    update.add_argument("identifier", metavar="ID")
    update.add_argument("--schema", required=True, type=Path, metavar="FILE.json")
    write_options(update)
    update.set_defaults(handler=_update)

    show = sub.add_parser("show", help="print template ID's schema")
    show.add_argument("identifier", metavar="ID")
    add_node_argument(show)
    add_json_argument(show)
    show.set_defaults(handler=_show)


def read_schema(path: Path) -> bytes:
    """The schema in `path`, checked against the supported subset, as compact key-sorted
    JSON (the same schema is always the same bytes on the ledger)."""
    data = compact_json(read_json_option(path, "--schema"))
    try:
        parse_template(data)
    except SparkError as exc:
        raise SparkError(exc.code, f"--schema {path}: {exc.message}") from None
    return data


def _create(args: argparse.Namespace) -> int:
    identifier = identifier_to_sign(args.identifier)
    data = read_schema(args.schema)
    values = [value(TEMPLATE_SCHEMA_INDEX, TEMPLATE_VALUE_TYPE, data)]
    owner = check_bid(args.owner, "--owner") if args.owner else ""
    return sign_and_submit(
        args,
        lambda b: b.register(identifier.display, values, owner, now_ms=now_ms()),
        f"created template {identifier.display}",
    )


def _update(args: argparse.Namespace) -> int:
    identifier = identifier_to_sign(args.identifier)
    data = read_schema(args.schema)

    with NodeClient.from_args(args) as client:
        record = client.resolve(identifier.display).record
    current = template_value(record)
    if current is None:
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{record.identifier} is not a template: it holds no {TEMPLATE_VALUE_TYPE} value",
        )
    upsert = [value(current.index, TEMPLATE_VALUE_TYPE, data)]
    return sign_and_submit(
        args,
        lambda b: b.update(identifier.display, upsert, [], now_ms=now_ms()),
        f"updated template {identifier.display}",
    )


def _show(args: argparse.Namespace) -> int:
    identifier = parse_identifier(args.identifier)
    with NodeClient.from_args(args) as client:
        record = client.resolve(identifier.display).record
    template_rule(record)  # INVALID_VALUE when it is no template
    found = template_value(record)
    assert found is not None  # template_rule refused a record without one
    schema = json.loads(found.data.decode("utf-8"))
    status = "REVOKED" if record.status == pb.REVOKED else "ACTIVE"
    if args.json:
        emit_json(
            {
                "identifier": record.identifier,
                "owner": record.owner,
                "status": status,
                "index": found.index,
                "schema": schema,
            }
        )
        return 0
    emit_text(f"template: {record.identifier}")
    emit_text(f"owner:    {record.owner}")
    emit_text(f"status:   {status}")
    emit_text(f"schema (index {found.index}):")
    for line in json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True).splitlines():
        emit_text(f"  {line}")
    return 0
