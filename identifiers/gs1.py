"""GS1 keys found in suffixes: GTIN check digits and GS1 Digital Link URIs (DESIGN §2).

Rules followed:
- GS1 General Specifications, mod-10 check digit: weights 3, 1, 3, … starting from the
  rightmost data digit; the check digit brings the weighted sum to a multiple of 10.
  GTIN-8/12/13 are GTIN-14 with leading zeros, which add nothing to the sum.
- GS1 Digital Link: URI Syntax: `scheme://host[/own/path]/01/{GTIN}` then the GTIN's key
  qualifiers `22` (consumer product variant), `10` (batch/lot), `21` (serial), each
  optional but in that order — or `235` (third-party controlled serial) alone — and data
  attributes as `?AI=value` in the query. Values are percent-encoded; qualifier values use
  GS1 character set 82.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError

GTIN_LENGTHS: Final = (8, 12, 13, 14)
GTIN_AI: Final = "01"

# key qualifiers of a GTIN: AI -> (name, maximum length of the value)
GTIN_QUALIFIERS: Final = {
    "22": ("cpv", 20),
    "10": ("lot", 20),
    "21": ("serial", 20),
    "235": ("tpx", 28),
}
GTIN_QUALIFIER_ORDER: Final = ("22", "10", "21")
# Digital Link 1.0/1.1 allowed these names for the AIs; 1.2 deprecated them, but labels
# printed with them stay in circulation, so we still read them.
CONVENIENCE_NAMES: Final = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21"}
# primary keys of other GS1 keys: named in errors so a user knows why a link is refused
OTHER_PRIMARY_KEYS: Final = {
    "00": "SSCC",
    "253": "GDTI",
    "255": "GCN",
    "401": "GINC",
    "402": "GSIN",
    "414": "GLN",
    "415": "GLN of the invoicing party",
    "417": "party GLN",
    "8003": "GRAI",
    "8004": "GIAI",
    "8006": "ITIP",
    "8010": "CPID",
    "8013": "GMN",
    "8017": "GSRN-P",
    "8018": "GSRN",
}

_DIGITS: Final = frozenset("0123456789")
# GS1 AI encodable character set 82: ! " % & ' ( ) * + , - . / 0-9 : ; < = > ? A-Z _ a-z
CHARSET_82: Final = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
# characters a URI may carry unencoded (RFC 3986 unreserved, sub-delims, ':', '@', '/', '?')
_URI_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
)
_HOST_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:[]"
)
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def _show(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


# --- GTIN ---------------------------------------------------------------------------


def check_digit(data_digits: str) -> int:
    """The GS1 mod-10 check digit for `data_digits` (every digit but the check digit)."""
    if not isinstance(data_digits, str) or not data_digits:
        raise SparkError(ErrorCode.INVALID_GTIN, "check digit needs at least one data digit")
    for pos, ch in enumerate(data_digits):
        if ch not in _DIGITS:
            raise SparkError(
                ErrorCode.INVALID_GTIN, f"{_show(ch)} at position {pos} is not a digit"
            )
    # weight 3 on the rightmost data digit, then alternating 1, 3, ...
    total = sum(
        int(ch) * (3 if offset % 2 == 0 else 1) for offset, ch in enumerate(reversed(data_digits))
    )
    return (10 - total % 10) % 10


@dataclass(frozen=True, slots=True)
class Gtin:
    """A GTIN with a correct check digit, as written (8, 12, 13 or 14 digits)."""

    digits: str

    @property
    def kind(self) -> str:
        return f"GTIN-{len(self.digits)}"

    @property
    def gtin14(self) -> str:
        """The 14-digit form used in Digital Link URIs and for comparison."""
        return self.digits.rjust(14, "0")

    @property
    def check_digit(self) -> int:
        return int(self.digits[-1])

    def __str__(self) -> str:
        return self.digits


def _check_gtin_shape(text: object) -> str:
    if not isinstance(text, str):
        raise SparkError(ErrorCode.INVALID_GTIN, f"GTIN must be text, got {type(text).__name__}")
    for pos, ch in enumerate(text):
        if ch not in _DIGITS:
            raise SparkError(
                ErrorCode.INVALID_GTIN,
                f"GTIN contains {_show(ch)} at position {pos}; only digits 0-9 are allowed",
            )
    if len(text) not in GTIN_LENGTHS:
        raise SparkError(
            ErrorCode.INVALID_GTIN,
            f"GTIN must have 8, 12, 13 or 14 digits, got {len(text)}",
        )
    return text


def parse_gtin(text: str) -> Gtin:
    """Validate a GTIN-8/12/13/14 including its check digit."""
    digits = _check_gtin_shape(text)
    expected = check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        raise SparkError(
            ErrorCode.INVALID_GTIN,
            f"GTIN {digits} has check digit {digits[-1]} at position {len(digits) - 1}, "
            f"expected {expected}",
        )
    return Gtin(digits)


def is_valid_gtin(text: str) -> bool:
    try:
        parse_gtin(text)
    except SparkError:
        return False
    return True


def complete_gtin(body: str) -> Gtin:
    """Append the check digit to a GTIN body of 7, 11, 12 or 13 digits."""
    if not isinstance(body, str) or len(body) + 1 not in GTIN_LENGTHS:
        size = len(body) if isinstance(body, str) else type(body).__name__
        raise SparkError(
            ErrorCode.INVALID_GTIN,
            f"GTIN body must have 7, 11, 12 or 13 digits, got {size}",
        )
    return Gtin(body + str(check_digit(body)))


# --- GS1 Digital Link -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigitalLink:
    """A GS1 Digital Link URI whose primary key is a GTIN.

    `scheme` and `host` are empty when only the path was given (`01/…/21/…`).
    `qualifiers` holds every path key qualifier in order as (AI, value); `attributes` the
    GS1 data attributes of the query (numeric keys); `extensions` any other query
    parameters (such as `linkType`).
    """

    uri: str
    scheme: str
    host: str
    path_prefix: str
    gtin: str
    cpv: str | None
    lot: str | None
    serial: str | None
    qualifiers: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...]
    extensions: tuple[tuple[str, str], ...]

    @property
    def element_string(self) -> str:
        """The human-readable GS1 element string, e.g. `(01)09506000134352(10)ABC`."""
        parts = [f"({GTIN_AI}){self.gtin}"]
        parts += [f"({ai}){value}" for ai, value in self.qualifiers]
        parts += [f"({ai}){value}" for ai, value in self.attributes]
        return "".join(parts)


def _fail(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_DIGITAL_LINK, message)


def _check_uri_chars(text: str, offset: int) -> None:
    for pos, ch in enumerate(text):
        if ch not in _URI_CHARS:
            raise _fail(
                f"{_show(ch)} at character {offset + pos} is not allowed in a URI; "
                "percent-encode it"
            )


def percent_decode(text: str, offset: int = 0) -> str:
    """Decode %XX escapes as UTF-8; `offset` places error positions in the whole URI."""
    out = bytearray()
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "%":
            pair = text[pos + 1 : pos + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise _fail(f"'%' at character {offset + pos} is not followed by two hex digits")
            out.append(int(pair, 16))
            pos += 3
        else:
            out += ch.encode("utf-8", errors="surrogatepass")
            pos += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(
            f"percent-encoded bytes at character {offset} are not UTF-8 ({exc.reason})"
        ) from None


def _split_scheme_and_host(uri: str) -> tuple[str, str, int]:
    """Return (scheme, host, index where the path starts)."""
    head, sep, _ = uri.partition("://")
    scheme = head.lower()
    if not sep or scheme not in ("http", "https"):
        raise _fail("a GS1 Digital Link URI starts with https:// or http://")
    start = len(head) + 3
    end = start
    while end < len(uri) and uri[end] not in "/?#":
        end += 1
    host = uri[start:end]
    if not host:
        raise _fail(f"URI has no host (at character {start})")
    for pos, ch in enumerate(host):
        if ch not in _HOST_CHARS:
            raise _fail(f"host contains {_show(ch)} at character {start + pos}")
    return scheme, host.lower(), end


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse `https://host[/path]/01/{GTIN}[/22/…][/10/…][/21/…][?AI=value&…]`."""
    if not isinstance(uri, str):
        raise _fail(f"Digital Link must be text, got {type(uri).__name__}")
    scheme, host, path_start = _split_scheme_and_host(uri)
    return _parse_path_and_query(uri, uri[path_start:], path_start, scheme, host)


def parse_digital_link_path(path: str) -> DigitalLink:
    """Parse the path form without scheme and host: `01/{GTIN}[/10/lot]…[?…]`."""
    if not isinstance(path, str):
        raise _fail(f"Digital Link path must be text, got {type(path).__name__}")
    # positions in errors count from the path's first character, before the added '/'
    return _parse_path_and_query(path, "/" + path, -1, "", "")


def _parse_path_and_query(
    original: str, rest: str, rest_at: int, scheme: str, host: str
) -> DigitalLink:
    """`rest` is the URI from its path on; `rest_at` its position in `original`."""
    rest = rest.split("#", 1)[0]  # the fragment never reaches a resolver
    path, _, query = rest.partition("?")
    _check_uri_chars(rest, rest_at)
    if not path.startswith("/") or path == "/":
        raise _fail(f"no GTIN: expected /{GTIN_AI}/{{GTIN}} after the host")
    # segments with the position of their first character in `original`
    segments: list[tuple[str, int]] = []
    pos = rest_at + 1
    for text in path[1:].split("/"):
        if not text:
            raise _fail(f"empty path segment at character {pos}")
        segments.append((text, pos))
        pos += len(text) + 1
    key_at = _find_gtin_key(segments)
    gtin = _gtin_value(*segments[key_at + 1])
    # (AI, raw value, position of the AI, position of the value)
    qualifiers = [
        (_ai_name(ai_text), raw, ai_at, raw_at)
        for (ai_text, ai_at), (raw, raw_at) in zip(
            segments[key_at + 2 :: 2], segments[key_at + 3 :: 2], strict=True
        )
    ]
    _check_qualifier_order([(ai, ai_at) for ai, _, ai_at, _ in qualifiers])
    values = tuple((ai, _qualifier_value(ai, raw, at)) for ai, raw, _, at in qualifiers)
    by_ai = dict(values)
    attributes, extensions = _parse_query(query, rest_at + len(path) + 1)
    return DigitalLink(
        uri=original,
        scheme=scheme,
        host=host,
        path_prefix="".join("/" + text for text, _ in segments[:key_at]),
        gtin=gtin,
        cpv=by_ai.get("22"),
        lot=by_ai.get("10"),
        serial=by_ai.get("21"),
        qualifiers=values,
        attributes=attributes,
        extensions=extensions,
    )


def _ai_name(segment: str) -> str:
    return CONVENIENCE_NAMES.get(segment, segment)


def _find_gtin_key(segments: list[tuple[str, int]]) -> int:
    """Index of the `01` segment, found by walking (AI, value) pairs from the right.

    Walking from the right lets a host keep its own path before the key
    (`https://example.com/products/01/…`), and lets a value look like an AI (`/10/21`).
    """
    index = len(segments) - 2
    while index >= 0:
        ai = _ai_name(segments[index][0])
        if ai == GTIN_AI:
            return index
        if ai not in GTIN_QUALIFIERS:
            break
        index -= 2
    last_text, last_at = segments[-1]
    last_ai = _ai_name(last_text)
    if last_ai == GTIN_AI or last_ai in GTIN_QUALIFIERS:
        raise _fail(f"AI {last_text} at character {last_at} has no value after it")
    if any(_ai_name(text) == GTIN_AI for text, _ in segments) and index >= 0:
        text, at = segments[index]
        raise _fail(
            f"path segment {text!r} at character {at} is not a GTIN key qualifier; "
            "after /01/{GTIN} come /22/, /10/, /21/ (in that order) or /235/"
        )
    for text, at in segments:
        if text in OTHER_PRIMARY_KEYS:
            raise _fail(
                f"primary key AI {text} ({OTHER_PRIMARY_KEYS[text]}) at character {at} "
                "is not supported; only GTIN links (/01/) are read"
            )
    raise _fail(f"no GTIN: expected /{GTIN_AI}/{{GTIN}} in the path")


def _gtin_value(raw: str, at: int) -> str:
    value = percent_decode(raw, at)
    try:
        return parse_gtin(value).gtin14
    except SparkError as exc:
        raise _fail(f"GTIN at character {at}: {exc.message}") from None


def _qualifier_value(ai: str, raw: str, at: int) -> str:
    value = percent_decode(raw, at)
    name, max_chars = GTIN_QUALIFIERS[ai]
    if len(value) > max_chars:
        raise _fail(
            f"{name} (AI {ai}) at character {at} has {len(value)} characters, "
            f"at most {max_chars} allowed"
        )
    for pos, ch in enumerate(value):
        if ch not in CHARSET_82:
            raise _fail(
                f"{name} (AI {ai}) at character {at} contains {_show(ch)} at position {pos}; "
                "GS1 character set 82 allows letters, digits and !\"%&'()*+,-./:;<=>?_"
            )
    return value


def _check_qualifier_order(qualifiers: list[tuple[str, int]]) -> None:
    seen: list[str] = []
    for ai, at in qualifiers:
        if ai in seen:
            raise _fail(f"key qualifier AI {ai} at character {at} appears twice")
        if "235" in (ai, *seen):
            if seen or len(qualifiers) > 1:
                raise _fail(
                    "key qualifier AI 235 (third-party controlled serial) cannot be "
                    f"combined with other qualifiers (at character {at})"
                )
        elif seen and GTIN_QUALIFIER_ORDER.index(ai) < GTIN_QUALIFIER_ORDER.index(seen[-1]):
            raise _fail(
                f"key qualifier AI {ai} at character {at} comes after AI {seen[-1]}; "
                "the order is 22, 10, 21"
            )
        seen.append(ai)


def _parse_query(
    query: str, offset: int
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    attributes: list[tuple[str, str]] = []
    extensions: list[tuple[str, str]] = []
    pos = offset
    for param in query.split("&") if query else []:
        raw_key, _, raw_value = param.partition("=")
        key = percent_decode(raw_key, pos)
        value = percent_decode(raw_value, pos + len(raw_key) + 1)
        if not param:
            pass  # tolerate `?&a=b` and a trailing '&'
        elif key and set(key) <= _DIGITS:
            _check_attribute(key, value, pos, attributes)
            attributes.append((key, value))
        else:
            extensions.append((key, value))
        pos += len(param) + 1
    return tuple(attributes), tuple(extensions)


def _check_attribute(ai: str, value: str, at: int, earlier: list[tuple[str, str]]) -> None:
    if not 2 <= len(ai) <= 4:
        raise _fail(f"query key {ai!r} at character {at} is not a GS1 AI (2 to 4 digits)")
    if ai == GTIN_AI or ai in GTIN_QUALIFIERS or ai in OTHER_PRIMARY_KEYS:
        raise _fail(f"AI {ai} at character {at} is a key or key qualifier; it belongs in the path")
    if any(ai == seen for seen, _ in earlier):
        raise _fail(f"data attribute AI {ai} at character {at} appears twice")
    if not value:
        raise _fail(f"data attribute AI {ai} at character {at} has no value")
