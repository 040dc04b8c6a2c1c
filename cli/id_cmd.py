"""`spark id bid|check`: BIDs of public keys, and what an identifier is made of."""

from __future__ import annotations

import argparse
from typing import Any

from sparkchain.cli.output import EXIT_OK, add_json_argument, emit_json, emit_text, fail
from sparkchain.identifiers.bid import bid_from_public_key, parse_bid, parse_public_key_text
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import Prefix, parse_identifier, parse_prefix
from sparkchain.identifiers.schemes import SchemeMatch, recognise

_SHOWN_INPUT_CHARS = 80

_CHECK_EPILOG = """\
Each ID is an identifier PREFIX/SUFFIX (88.608.24161301/SN-0001), a prefix alone (88.608)
or a BID (did:bid:ef...). Suffixes that look like a GTIN, a GS1 Digital Link or an OID
are decoded and checked. A Digital Link may carry any GS1 key (GTIN 01, SSCC 00, GDTI 253,
GCN 255, GINC 401, GSIN 402, GLN 414, pay-to GLN 415, party GLN 417, GRAI 8003, GIAI 8004,
ITIP 8006, CPID 8010, GMN 8013, GSRN-P 8017, GSRN 8018) with its key qualifiers, in numeric
or short-name form (/gtin/.../lot/.../ser/..., /sscc/..., /gln/...); "canonical" is the
suffix that `spark register` stores and the gateway's resolver looks up.

exit status: 0 when every ID parses, 1 when any does not (one error line each on stderr);
with --strict, a recognised scheme that breaks its rules (such as a wrong GTIN check
digit) fails too.

examples:
  spark id check 88.608.24161301/SN-0001
  spark id check 88.608/4006381333931 '88.608/01/09506000134352/10/ABC'
  spark id check --json 88.608/https://id.gs1.org/01/09506000134352/21/12345
  spark id check 88.608/sscc/106141411234567897 88.608/8004/0614141ASSET-7
"""

_BID_EPILOG = """\
PUBLIC_KEY is 64 hex characters (the raw 32-byte Ed25519 key) or Spark's encoded form,
70 hex characters starting with b06566 (as Spark's SDKs print it); an SM2 key is 130 hex
characters (04 || X || Y) or 136 starting with b07a66, and its BID is did:bid:zf...

examples:
  spark id bid d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
  spark id bid --acsn abcd b06566d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
"""


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ident = commands.add_parser(
        "id",
        help="inspect identifiers and BIDs",
        description="Inspect identifiers and BIDs locally (no node needed).",
    )
    sub = ident.add_subparsers(dest="id_command", metavar="ACTION")
    sub.required = True

    bid = sub.add_parser(
        "bid",
        help="print the BID (did:bid:ef... or zf...) of an Ed25519 or SM2 public key",
        description="Print the Spark-compatible BID of an Ed25519 or SM2 public key.",
        epilog=_BID_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bid.add_argument(
        "public_key",
        metavar="PUBLIC_KEY",
        help="64 hex, or 70 hex from b06566 (SM2: 130 from 04, 136 from b07a66)",
    )
    bid.add_argument("--acsn", metavar="CODE", help="sub-chain code: 4 lowercase letters or digits")
    add_json_argument(bid)
    bid.set_defaults(handler=_bid)

    check = sub.add_parser(
        "check",
        help="check identifiers: normalised form, prefix chain, recognised schemes",
        description="Check identifiers, prefixes or BIDs and explain them.",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("ids", nargs="+", metavar="ID", help="identifier, prefix or BID")
    check.add_argument("--json", action="store_true", help="print JSON (a list, one per ID)")
    check.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a recognised scheme is broken (e.g. a wrong GTIN check digit)",
    )
    check.set_defaults(handler=_check)


def _bid(args: argparse.Namespace) -> int:
    public_key = parse_public_key_text(args.public_key)
    bid = bid_from_public_key(public_key, args.acsn)
    if args.json:
        emit_json({"bid": bid, "public_key": public_key.hex(), "acsn": args.acsn})
    else:
        emit_text(bid)
    return EXIT_OK


def _shown(text: str) -> str:
    if len(text) > _SHOWN_INPUT_CHARS:
        text = text[: _SHOWN_INPUT_CHARS - 3] + "..."
    return repr(text)


def _scheme_json(match: SchemeMatch) -> dict[str, Any]:
    return {
        "scheme": match.scheme,
        "valid": match.valid,
        "summary": match.summary,
        "fields": dict(match.fields),
        "error": None if match.valid else {"code": match.code, "message": match.problem},
    }


def _prefix_chain(prefix: Prefix) -> list[str]:
    return [prefix.display] + [p.display for p in prefix.ancestors()]


def explain(text: str) -> dict[str, Any]:
    """What `text` is, as a JSON-ready dict; raises SparkError when it does not parse."""
    if "/" in text:
        identifier = parse_identifier(text)
        prefix = identifier.prefix
        return {
            "kind": "identifier",
            "display": identifier.display,
            "key": identifier.key,
            "prefix": prefix.display,
            "prefix_chain": _prefix_chain(prefix),
            "suffix": identifier.suffix,
            "schemes": [_scheme_json(m) for m in recognise(identifier.suffix)],
        }
    if text.startswith("did:"):
        bid = parse_bid(text)
        return {"kind": "bid", "display": bid.text, "acsn": bid.acsn, "schemes": []}
    try:
        prefix = parse_prefix(text)
    except SparkError as exc:
        raise SparkError(
            ErrorCode.INVALID_IDENTIFIER,
            f"not an identifier (no '/' between prefix and suffix) nor a prefix: {exc.message}",
        ) from None
    return {
        "kind": "prefix",
        "display": prefix.display,
        "key": prefix.key,
        "prefix_chain": _prefix_chain(prefix),
        "schemes": [],
    }


def _print_text(info: dict[str, Any]) -> None:
    emit_text(info["display"])
    emit_text(f"  kind:    {info['kind']}")
    if "key" in info:
        emit_text(f"  key:     {info['key']}")
    if info["kind"] == "bid":
        emit_text(f"  acsn:    {info['acsn'] or '(main chain)'}")
    if "prefix_chain" in info:
        emit_text(f"  prefix:  {' -> '.join(info['prefix_chain'])}")
    if "suffix" in info:
        emit_text(f"  suffix:  {info['suffix']}")
        if not info["schemes"]:
            emit_text("  scheme:  none recognised")
    for scheme in info["schemes"]:
        if scheme["valid"]:
            emit_text(f"  scheme:  {scheme['summary']}")
            for name, value in scheme["fields"].items():
                emit_text(f"           {name}: {value}")
        else:
            error = scheme["error"]
            emit_text(f"  scheme:  {scheme['summary']}: {error['code']}: {error['message']}")


def _fail_input(text: str, error: SparkError) -> int:
    """One error line on stderr naming the input; the exit code it calls for."""
    return fail(SparkError(error.code, f"{_shown(text)}: {error.message}"))


def _check(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    printed = 0
    for text in args.ids:
        try:
            info = explain(text)
        except SparkError as exc:
            failed = _fail_input(text, exc)  # always print, even after an earlier failure
            exit_code = exit_code or failed
            results.append(
                {"input": text, "valid": False, "error": {"code": exc.code, "message": exc.message}}
            )
            continue
        results.append({"input": text, "valid": True, **info})
        if args.strict:
            for scheme in info["schemes"]:
                if not scheme["valid"]:
                    error = SparkError(scheme["error"]["code"], scheme["error"]["message"])
                    failed = _fail_input(text, error)
                    exit_code = exit_code or failed
        if not args.json:
            if printed:
                emit_text()
            _print_text(info)
            printed += 1
    if args.json:
        emit_json(results)
    return exit_code
