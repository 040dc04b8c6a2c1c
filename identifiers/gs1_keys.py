"""The GS1 keys a Digital Link can carry, their key qualifiers and how each value is checked.

Rules followed (GS1 General Specifications §3 and §7.9, GS1 Digital Link URI Syntax 1.x):
- The mod-10 check digit: weights 3, 1, 3, … from the rightmost data digit; the check
  digit brings the weighted sum to a multiple of 10. Leading zeros add nothing.
- The GMN check character pair (AI 8013): each character's value is its position in
  character set 82 (`!` is 0), weighted by the primes 2, 3, 5, 7, … from the rightmost
  data character; the sum modulo 1021 is written as two characters of the 32-character
  alphabet `23456789ABCDEFGHJKLMNPQRSTUVWXYZ` (high five bits, then low five).
- Every primary key and its key qualifiers, in the order the standard allows them, are in
  PRIMARY_KEYS below; a qualifier path is an ordered list of qualifiers of which a link may
  use any subset, in that order (a GTIN takes 22, 10, 21, or 235 alone).

Each value is a run of parts: `N13` (13 digits), `X..17` (up to 17 characters of set 82),
`Y..30` (up to 30 characters of set 39: digits, capitals, `#`, `-`, `/`). Only the last
part may vary in length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError

DIGITS: Final = "0123456789"
# GS1 AI encodable character set 82, in the order that gives each character its value
CHARSET_82: Final = (
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
CHARSET_39: Final = "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
GMN_CHECK_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
# the first 23 primes: a GMN has at most 23 characters before its check pair
_GMN_WEIGHTS: Final = tuple(n for n in range(2, 84) if all(n % d for d in range(2, n)))
_GMN_MODULUS: Final = 1021
_CHARSET_NAMES: Final = {
    "N": ("only digits are allowed", DIGITS),
    "X": ("GS1 character set 82 allows letters, digits and !\"%&'()*+,-./:;<=>?_", CHARSET_82),
    "Y": ("GS1 character set 39 allows capitals, digits and #-/", CHARSET_39),
}


def show_char(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


def check_digit(data_digits: str) -> int:
    """The GS1 mod-10 check digit for `data_digits` (every digit but the check digit)."""
    if not isinstance(data_digits, str) or not data_digits:
        raise SparkError(ErrorCode.INVALID_GTIN, "check digit needs at least one data digit")
    for pos, ch in enumerate(data_digits):
        if ch not in DIGITS:
            raise SparkError(
                ErrorCode.INVALID_GTIN, f"{show_char(ch)} at position {pos} is not a digit"
            )
    # weight 3 on the rightmost data digit, then alternating 1, 3, ...
    total = sum(
        int(ch) * (3 if offset % 2 == 0 else 1) for offset, ch in enumerate(reversed(data_digits))
    )
    return (10 - total % 10) % 10


def gmn_check_pair(data: str) -> str:
    """The two check characters of a GMN whose other characters are `data` (set 82)."""
    if not 1 <= len(data) <= len(_GMN_WEIGHTS):
        raise SparkError(
            ErrorCode.INVALID_DIGITAL_LINK,
            f"a GMN has 1 to {len(_GMN_WEIGHTS)} characters before its check pair, got {len(data)}",
        )
    total = 0
    for weight, ch in zip(_GMN_WEIGHTS, reversed(data), strict=False):
        if ch not in CHARSET_82:
            raise SparkError(
                ErrorCode.INVALID_DIGITAL_LINK, f"GMN contains {show_char(ch)}, not in set 82"
            )
        total += CHARSET_82.index(ch) * weight
    total %= _GMN_MODULUS
    return GMN_CHECK_ALPHABET[total >> 5] + GMN_CHECK_ALPHABET[total & 31]


@dataclass(frozen=True, slots=True)
class Part:
    """A run of characters in a key or qualifier value."""

    charset: str  # "N", "X" or "Y"
    min_chars: int
    max_chars: int
    check: str = ""  # "mod10" (last digit), "pair" (GMN check pair), "" none
    leading_zero: bool = False  # must start with "0" (the GRAI's filler digit)
    no_leading_zero: bool = False  # a number that may not start with "0" (CPSN)
    meaning: str = ""  # named in errors: "the document type with its check digit"

    @property
    def fixed(self) -> bool:
        return self.min_chars == self.max_chars


@dataclass(frozen=True, slots=True)
class AiSpec:
    """A GS1 Application Identifier that a Digital Link path may hold."""

    ai: str
    title: str  # "GLN", "serial number"
    short_name: str  # the Digital Link 1.1 name (`gln`); "" when there is none
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class PrimaryKey:
    spec: AiSpec
    qualifier_paths: tuple[tuple[str, ...], ...] = ()

    @property
    def qualifiers(self) -> frozenset[str]:
        return frozenset(ai for path in self.qualifier_paths for ai in path)

    def describe_qualifiers(self) -> str:
        """`GTIN (AI 01) takes /22/, /10/, /21/ (in that order), or /235/ alone`."""
        name = f"{self.spec.title} (AI {self.spec.ai})"
        if not self.qualifier_paths:
            return f"{name} takes no key qualifiers"
        options = []
        for path in self.qualifier_paths:
            text = ", ".join(f"/{ai}/" for ai in path)
            if len(path) > 1:
                text += " (in that order)"
            elif len(self.qualifier_paths) > 1:
                text += " alone"
            options.append(text)
        return f"{name} takes " + ", or ".join(options)


def _n(chars: int, check: str = "", meaning: str = "", leading_zero: bool = False) -> Part:
    return Part("N", chars, chars, check, leading_zero, meaning=meaning)


def _var(charset: str, min_chars: int, max_chars: int) -> Part:
    return Part(charset, min_chars, max_chars)


# GTIN-8/12/13 are read too and become GTIN-14 (gs1.py); the table holds the 14-digit form
GTIN_AI: Final = "01"
QUALIFIERS: Final = {
    spec.ai: spec
    for spec in (
        AiSpec("22", "consumer product variant", "cpv", (_var("X", 1, 20),)),
        AiSpec("10", "batch/lot", "lot", (_var("X", 1, 20),)),
        AiSpec("21", "serial number", "ser", (_var("X", 1, 20),)),
        AiSpec("235", "third-party controlled serial", "tpx", (_var("X", 1, 28),)),
        AiSpec("254", "GLN extension", "glnx", (_var("X", 1, 20),)),
        AiSpec("8011", "CPID serial number", "cpsn", (Part("N", 1, 12, no_leading_zero=True),)),
        AiSpec("8019", "service relation instance number", "srin", (_var("N", 1, 10),)),
        AiSpec("8020", "payment slip reference", "refno", (_var("X", 1, 25),)),
    )
}
_ITEM_QUALIFIERS: Final = ("22", "10", "21")
PRIMARY_KEYS: Final = {
    key.spec.ai: key
    for key in (
        PrimaryKey(
            AiSpec(GTIN_AI, "GTIN", "gtin", (_n(14, "mod10"),)), (_ITEM_QUALIFIERS, ("235",))
        ),
        PrimaryKey(
            AiSpec(
                "8006",
                "ITIP",
                "itip",
                (
                    _n(14, "mod10", "the GTIN-14"),
                    _n(2, meaning="the piece number"),
                    _n(2, meaning="the total of pieces"),
                ),
            ),
            (_ITEM_QUALIFIERS,),
        ),
        PrimaryKey(AiSpec("00", "SSCC", "sscc", (_n(18, "mod10"),))),
        PrimaryKey(
            AiSpec(
                "253",
                "GDTI",
                "gdti",
                (_n(13, "mod10", "the document type with its check digit"), _var("X", 0, 17)),
            )
        ),
        PrimaryKey(
            AiSpec(
                "255",
                "GCN",
                "gcn",
                (_n(13, "mod10", "the coupon reference with its check digit"), _var("N", 0, 12)),
            )
        ),
        PrimaryKey(AiSpec("401", "GINC", "ginc", (_var("X", 1, 30),))),
        PrimaryKey(AiSpec("402", "GSIN", "gsin", (_n(17, "mod10"),))),
        PrimaryKey(AiSpec("414", "GLN", "gln", (_n(13, "mod10"),)), (("254",),)),
        PrimaryKey(AiSpec("415", "pay-to GLN", "payTo", (_n(13, "mod10"),)), (("8020",),)),
        PrimaryKey(AiSpec("417", "party GLN", "party", (_n(13, "mod10"),))),
        PrimaryKey(
            AiSpec(
                "8003",
                "GRAI",
                "grai",
                (
                    _n(14, "mod10", "a 0 and the asset type with its check digit", True),
                    _var("X", 0, 16),
                ),
            )
        ),
        PrimaryKey(AiSpec("8004", "GIAI", "giai", (_var("X", 1, 30),))),
        PrimaryKey(AiSpec("8010", "CPID", "cpid", (_var("Y", 1, 30),)), (("8011",),)),
        PrimaryKey(AiSpec("8013", "GMN", "gmn", (Part("X", 3, 25, check="pair"),))),
        PrimaryKey(AiSpec("8017", "GSRN-P", "gsrnp", (_n(18, "mod10"),)), (("8019",),)),
        PrimaryKey(AiSpec("8018", "GSRN", "gsrn", (_n(18, "mod10"),)), (("8019",),)),
    )
}
# the Digital Link 1.0/1.1 names (`/gtin/…/lot/…`); 1.2 deprecated them, but labels printed
# with them stay in circulation, so they are still read
SHORT_NAMES: Final = {
    spec.short_name: spec.ai
    for spec in [key.spec for key in PRIMARY_KEYS.values()] + list(QUALIFIERS.values())
    if spec.short_name
}
ALL_QUALIFIERS: Final = frozenset(QUALIFIERS)


def check_value(spec: AiSpec, value: str) -> None:
    """Raise INVALID_DIGITAL_LINK naming the problem unless `value` fits `spec`."""
    name = f"{spec.title} (AI {spec.ai})"
    fixed = sum(part.min_chars for part in spec.parts if part.fixed)
    variable = [part for part in spec.parts if not part.fixed]
    longest = fixed + sum(part.max_chars for part in variable)
    shortest = fixed + sum(part.min_chars for part in variable)
    if not shortest <= len(value) <= longest:
        unit = _unit(spec)
        if shortest == longest:
            raise _fail(f"{name} must have {longest} {unit}, got {len(value)}")
        if len(value) > longest:
            raise _fail(f"{name} has {len(value)} {unit}, at most {longest} allowed")
        raise _fail(f"{name} has {len(value)} {unit}, at least {shortest} needed")
    pos = 0
    for part in spec.parts:
        chars = part.max_chars if part.fixed else len(value) - pos
        _check_part(name, part, value[pos : pos + chars], pos)
        pos += chars


def _unit(spec: AiSpec) -> str:
    return "digits" if all(part.charset == "N" for part in spec.parts) else "characters"


def _check_part(name: str, part: Part, text: str, at: int) -> None:
    label, allowed = _CHARSET_NAMES[part.charset]
    for pos, ch in enumerate(text):
        if ch not in allowed:
            where = f", in {part.meaning}" if part.meaning else ""
            raise _fail(f"{name} contains {show_char(ch)} at position {at + pos}{where}; {label}")
    if part.leading_zero and text[:1] != "0":
        raise _fail(f"{name} must start with the filler digit 0, got {text[:1]!r}")
    if part.no_leading_zero and text[:1] == "0":
        raise _fail(f"{name} is a number without leading zeros, got {text!r}")
    if part.check == "mod10" and text:
        expected = check_digit(text[:-1])
        if int(text[-1]) != expected:
            raise _fail(
                f"{name} {text} has check digit {text[-1]} at position {at + len(text) - 1}, "
                f"expected {expected}"
            )
    if part.check == "pair":
        expected_pair = gmn_check_pair(text[:-2])
        if text[-2:] != expected_pair:
            raise _fail(
                f"{name} {text} ends in check characters {text[-2:]!r}, expected {expected_pair!r}"
            )


def _fail(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_DIGITAL_LINK, message)
