"""Handle-style identifiers `PREFIX/SUFFIX` and prefixes (DESIGN §2).

The lookup key upper-cases ASCII letters only (as the Handle System does); the display form
keeps the registrant's spelling. Every rejection is a SparkError naming what and where.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    MAX_IDENTIFIER_BYTES,
    MAX_PREFIX_SEGMENTS,
    MAX_SUFFIX_BYTES,
)

_SEGMENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
# Unicode category Cc is exactly U+0000–U+001F and U+007F–U+009F; surrogates cannot be
# encoded as UTF-8 at all. One regex scan keeps the common (valid) case fast.
_SUFFIX_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_upper(text: str) -> str:
    """Upper-case ASCII letters only; no Unicode case folding."""
    if text.isascii():  # str.upper() is then the same answer, several times faster
        return text.upper()
    return text.translate(_ASCII_UPPER)


@dataclass(frozen=True, slots=True)
class Prefix:
    display: str
    key: str

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.display.split("."))

    def parent(self) -> Prefix | None:
        if "." not in self.display:
            return None
        return parse_prefix(self.display.rsplit(".", 1)[0])

    def ancestors(self) -> list[Prefix]:
        """Nearest first: `88.608.1` → [`88.608`, `88`]."""
        out = []
        node = self.parent()
        while node is not None:
            out.append(node)
            node = node.parent()
        return out

    def __str__(self) -> str:
        return self.display


@dataclass(frozen=True, slots=True)
class Identifier:
    display: str
    key: str
    prefix: Prefix
    suffix: str

    def __str__(self) -> str:
        return self.display


def _require_str(text: object, what: str, code: ErrorCode) -> str:
    if not isinstance(text, str):
        raise SparkError(code, f"{what} must be text, got {type(text).__name__}")
    return text


def parse_prefix(text: str) -> Prefix:
    text = _require_str(text, "prefix", ErrorCode.INVALID_PREFIX)
    if not text:
        raise SparkError(ErrorCode.INVALID_PREFIX, "prefix is empty")
    segments = text.split(".")
    if len(segments) > MAX_PREFIX_SEGMENTS:
        raise SparkError(
            ErrorCode.INVALID_PREFIX,
            f"prefix has {len(segments)} segments, at most {MAX_PREFIX_SEGMENTS} allowed",
        )
    pos = 0
    for number, segment in enumerate(segments, start=1):
        if not segment:
            raise SparkError(
                ErrorCode.INVALID_PREFIX, f"prefix segment {number} is empty (at character {pos})"
            )
        for offset, ch in enumerate(segment):
            if ch not in _SEGMENT_CHARS:
                raise SparkError(
                    ErrorCode.INVALID_PREFIX,
                    f"prefix contains {_describe(ch)} at character {pos + offset}; "
                    "segments allow ASCII letters, digits and '-'",
                )
        pos += len(segment) + 1
    return Prefix(text, ascii_upper(text))


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "") + f" {ch!r}"


def check_suffix(suffix: str) -> None:
    suffix = _require_str(suffix, "suffix", ErrorCode.INVALID_IDENTIFIER)
    encoded = suffix.encode("utf-8", errors="surrogatepass")
    if not suffix:
        raise SparkError(ErrorCode.INVALID_IDENTIFIER, "suffix is empty")
    if len(encoded) > MAX_SUFFIX_BYTES:
        raise SparkError(
            ErrorCode.INVALID_IDENTIFIER,
            f"suffix is {len(encoded)} bytes of UTF-8, at most {MAX_SUFFIX_BYTES} allowed",
        )
    bad = _SUFFIX_FORBIDDEN.search(suffix)
    if bad is not None:
        ch = bad.group()
        byte_pos = len(suffix[: bad.start()].encode("utf-8", errors="surrogatepass"))
        kind = "a lone surrogate" if 0xD800 <= ord(ch) <= 0xDFFF else "control character"
        raise SparkError(
            ErrorCode.INVALID_IDENTIFIER,
            f"suffix contains {kind} U+{ord(ch):04X} at byte {byte_pos}",
        )
    if not suffix.isascii():
        _check_looks_like_one_identifier(suffix)
    if suffix != suffix.strip():
        raise SparkError(ErrorCode.INVALID_IDENTIFIER, "suffix has leading or trailing whitespace")


def _check_looks_like_one_identifier(suffix: str) -> None:
    """Two suffixes that look the same must be the same (DESIGN §2): no format characters
    (category Cf: bidi controls such as U+202E, zero-width characters, BOM) and Unicode NFC,
    so `é` is not also `e` + U+0301. ASCII text passes both checks by construction."""
    for position, ch in enumerate(suffix):
        if unicodedata.category(ch) == "Cf":
            raise SparkError(
                ErrorCode.INVALID_IDENTIFIER,
                f"suffix contains format character {_code_point(ch)} at byte "
                f"{_byte_offset(suffix, position)}",
            )
    if not unicodedata.is_normalized("NFC", suffix):
        normal = unicodedata.normalize("NFC", suffix)
        position = next(
            (i for i, (a, b) in enumerate(zip(suffix, normal, strict=False)) if a != b),
            min(len(suffix), len(normal)) - 1,
        )
        raise SparkError(
            ErrorCode.INVALID_IDENTIFIER,
            f"suffix is not in Unicode NFC (normalise it first) from byte "
            f"{_byte_offset(suffix, position)}, at {_code_point(suffix[position])}",
        )


def _code_point(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def _byte_offset(text: str, position: int) -> str:
    return str(len(text[:position].encode("utf-8", errors="surrogatepass")))


# The all-ASCII identifiers that parse_identifier accepts, as one regular expression: 1-8
# prefix segments, then a suffix of printable ASCII without leading or trailing spaces.
_ASCII_IDENTIFIER = re.compile(
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+){0,"
    + str(MAX_PREFIX_SEGMENTS - 1)
    + r"}/[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?"
)


def parse_identifier(text: str) -> Identifier:
    text = _require_str(text, "identifier", ErrorCode.INVALID_IDENTIFIER)
    # fast path: every ledger tx and every resolution parses identifiers; checking them
    # character by character (parse_identifier_by_rules) costs ~25 µs, this regular
    # expression ~1 µs, with the same answers (tests/test_ledger.py checks it)
    if len(text) <= MAX_IDENTIFIER_BYTES and text.isascii() and _ASCII_IDENTIFIER.fullmatch(text):
        prefix_text, suffix = text.split("/", 1)
        if len(suffix) <= MAX_SUFFIX_BYTES:
            key = ascii_upper(text)
            prefix = Prefix(prefix_text, key[: len(prefix_text)])
            return Identifier(text, key, prefix, suffix)
    return parse_identifier_by_rules(text)


def parse_identifier_by_rules(text: str) -> Identifier:
    """`parse_identifier` without its fast path: each rule checked in turn, with the error
    that names the first one broken."""
    if "/" not in text:
        raise SparkError(
            ErrorCode.INVALID_IDENTIFIER,
            f"identifier {text[:60]!r} has no '/' between prefix and suffix",
        )
    prefix_text, suffix = text.split("/", 1)
    try:
        prefix = parse_prefix(prefix_text)
    except SparkError as exc:
        raise SparkError(ErrorCode.INVALID_IDENTIFIER, exc.message) from None
    check_suffix(suffix)
    size = len(text.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise SparkError(
            ErrorCode.INVALID_IDENTIFIER,
            f"identifier is {size} bytes of UTF-8, at most {MAX_IDENTIFIER_BYTES} allowed",
        )
    return Identifier(text, f"{prefix.key}/{ascii_upper(suffix)}", prefix, suffix)


# the suffix part of _ASCII_IDENTIFIER
_ASCII_SUFFIX = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def identifier_under(prefix: Prefix, suffix: str) -> tuple[str, str]:
    """(display, key) of `suffix` under `prefix` (from `parse_prefix`): what
    `parse_identifier(f"{prefix.display}/{suffix}")` gives, with the same errors. A batch
    of a thousand suffixes under one prefix checks the prefix once, not per item."""
    text = f"{prefix.display}/{suffix}"
    if (
        len(text) <= MAX_IDENTIFIER_BYTES
        and len(suffix) <= MAX_SUFFIX_BYTES
        and text.isascii()
        and _ASCII_SUFFIX.fullmatch(suffix)
    ):
        return text, f"{prefix.key}/{suffix.upper()}"
    identifier = parse_identifier(text)
    return identifier.display, identifier.key


def identifier_key(text: str) -> str:
    """The lookup key of an identifier (validates it as `parse_identifier` does).

    Every resolve needs only the key: the all-ASCII fast path here builds no `Identifier`.
    """
    if (
        type(text) is str
        and len(text) <= MAX_IDENTIFIER_BYTES
        and text.isascii()
        and _ASCII_IDENTIFIER.fullmatch(text)
        and len(text) - text.index("/") - 1 <= MAX_SUFFIX_BYTES
    ):
        return text.upper()
    return parse_identifier(text).key


def is_under(prefix: Prefix, ancestor: Prefix) -> bool:
    """True when `prefix` equals `ancestor` or is derived from it."""
    return prefix.key == ancestor.key or prefix.key.startswith(ancestor.key + ".")
