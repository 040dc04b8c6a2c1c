"""Recognise well-known identifier schemes inside a suffix (DESIGN §2).

A suffix is free text; these are hints for people and for typed values, not rules of the
ledger. A suffix that looks like a scheme but breaks its rules (a GTIN with a wrong check
digit) is reported as an invalid match with the precise problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.gs1 import (
    GTIN_AI,
    GTIN_LENGTHS,
    DigitalLink,
    parse_digital_link,
    parse_digital_link_path,
    parse_gtin,
)
from sparkchain.identifiers.gs1_keys import PRIMARY_KEYS, SHORT_NAMES
from sparkchain.identifiers.oid import ROOT_ARCS, parse_oid

GTIN: Final = "gtin"
DIGITAL_LINK: Final = "gs1-digital-link"
OID: Final = "oid"

_ALL_DIGITS = re.compile(r"[0-9]+")
_DOTTED_DIGITS = re.compile(r"[0-9]+(?:\.[0-9]+)+")
_URN_OID = "urn:oid:"
# what a Digital Link's primary key segment may read: a numeric AI or its short name
_PRIMARY_KEY_NAMES = frozenset(PRIMARY_KEYS) | {
    name for name, ai in SHORT_NAMES.items() if ai in PRIMARY_KEYS
}


@dataclass(frozen=True, slots=True)
class SchemeMatch:
    """One scheme a suffix looks like; `valid` False carries the problem and its code."""

    scheme: str
    valid: bool
    summary: str
    fields: tuple[tuple[str, str], ...] = ()
    code: ErrorCode | None = None
    problem: str | None = None

    @classmethod
    def invalid(cls, scheme: str, summary: str, error: SparkError) -> SchemeMatch:
        return cls(scheme, False, summary, (), error.code, error.message)


def recognise(suffix: str) -> list[SchemeMatch]:
    """Every scheme `suffix` looks like (usually none or one)."""
    if not isinstance(suffix, str):
        return []
    found = [_gtin(suffix), _digital_link(suffix), _oid(suffix)]
    return [match for match in found if match is not None]


def _gtin(suffix: str) -> SchemeMatch | None:
    if not (_ALL_DIGITS.fullmatch(suffix) and len(suffix) in GTIN_LENGTHS):
        return None
    kind = f"GTIN-{len(suffix)}"
    try:
        gtin = parse_gtin(suffix)
    except SparkError as exc:
        return SchemeMatch.invalid(GTIN, f"{kind} {suffix}", exc)
    return SchemeMatch(
        GTIN,
        True,
        f"{kind} {gtin.digits} (check digit {gtin.check_digit} correct)",
        (
            ("kind", kind),
            ("gtin14", gtin.gtin14),
            ("check_digit", str(gtin.check_digit)),
            ("canonical", f"{GTIN_AI}/{gtin.gtin14}"),
        ),
    )


def _looks_like_digital_link(suffix: str) -> tuple[bool, bool]:
    """(is it a Digital Link candidate, is it the path form without scheme and host)."""
    if suffix[:8].lower().startswith(("https://", "http://")):
        path = suffix.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
        segments = path.split("/")[1:]
        return any(s in _PRIMARY_KEY_NAMES for s in segments), False
    first = suffix.split("/", 1)[0]
    return "/" in suffix and first in _PRIMARY_KEY_NAMES, True


def _digital_link(suffix: str) -> SchemeMatch | None:
    candidate, path_form = _looks_like_digital_link(suffix)
    if not candidate:
        return None
    try:
        link = parse_digital_link_path(suffix) if path_form else parse_digital_link(suffix)
    except SparkError as exc:
        return SchemeMatch.invalid(DIGITAL_LINK, "GS1 Digital Link that does not parse", exc)
    return SchemeMatch(DIGITAL_LINK, True, _describe_link(link), _link_fields(link))


def _link_fields(link: DigitalLink) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    if link.host:
        fields.append(("host", link.host))
    if link.path_prefix:
        fields.append(("path_prefix", link.path_prefix))
    fields.append(("key_type", link.key_title))
    fields.append(("primary_ai", link.primary_ai))
    fields.append(("gtin" if link.primary_ai == GTIN_AI else "key", link.key))
    named = {"22": "cpv", "10": "lot", "21": "serial"}
    fields += [(named.get(ai, f"ai_{ai}"), value) for ai, value in link.qualifiers]
    fields += [(f"ai_{ai}", value) for ai, value in link.attributes]
    fields += [(f"query_{key}", value) for key, value in link.extensions]
    fields.append(("element_string", link.element_string))
    fields.append(("canonical", link.canonical_suffix()))
    return tuple(fields)


def _describe_link(link: DigitalLink) -> str:
    where = f" at {link.host}" if link.host else ""
    return f"GS1 Digital Link ({link.key_title}){where}: {link.element_string}"


def _oid(suffix: str) -> SchemeMatch | None:
    text = suffix
    is_urn = suffix[: len(_URN_OID)].lower() == _URN_OID
    if is_urn:
        text = suffix[len(_URN_OID) :]
    # dotted numbers are often versions or dates; only a valid root arc makes them an OID
    elif not (_DOTTED_DIGITS.fullmatch(suffix) and suffix.split(".", 1)[0] in ("0", "1", "2")):
        return None
    try:
        oid = parse_oid(text)
    except SparkError as exc:
        return SchemeMatch.invalid(OID, "OID that breaks the OID rules", exc)
    return SchemeMatch(
        OID,
        True,
        f"OID {oid.text} (under {ROOT_ARCS[oid.arcs[0]]})",
        (("oid", oid.text), ("arcs", str(len(oid.arcs)))),
    )


# bare digit strings read as a GTIN by `gs1_canonical_suffix`: GTIN-8 is left out, as eight
# digits are as often a date or an order number that happens to pass the check digit
BARE_GTIN_LENGTHS: Final = (12, 13, 14)


@dataclass(frozen=True, slots=True)
class Gs1Canonical:
    """The canonical suffix of a GS1 key written as a suffix, or why there is none."""

    suffix: str | None  # None: not a GS1 key, or one that does not parse
    problem: SparkError | None = None  # it looked like a GS1 key but does not parse


def gs1_canonical_suffix(suffix: str) -> Gs1Canonical:
    """What `spark register` stores for a suffix that is a GS1 key (DESIGN §10): a Digital
    Link URI or path (`https://id.gs1.org/01/9506000134352/21/S`, `gln/9506000134352`)
    or a bare GTIN-12/13/14 becomes `{AI}/{key}[/{AI}/{value}…]` (a GTIN as GTIN-14, the
    query's data attributes dropped: they are not part of the key)."""
    if not isinstance(suffix, str):
        return Gs1Canonical(None)
    if _ALL_DIGITS.fullmatch(suffix) and len(suffix) in BARE_GTIN_LENGTHS:
        try:
            return Gs1Canonical(f"{GTIN_AI}/{parse_gtin(suffix).gtin14}")
        except SparkError:
            return Gs1Canonical(None)  # a number, not a GTIN
    candidate, path_form = _looks_like_digital_link(suffix)
    if not candidate:
        return Gs1Canonical(None)
    try:
        link = parse_digital_link_path(suffix) if path_form else parse_digital_link(suffix)
    except SparkError as exc:
        return Gs1Canonical(None, exc)
    return Gs1Canonical(link.canonical_suffix())
