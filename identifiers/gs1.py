"""GS1 keys found in suffixes: GTIN check digits and GS1 Digital Link URIs (DESIGN §2, §10).

Rules followed:
- GS1 General Specifications, mod-10 check digit (identifiers/gs1_keys.py). GTIN-8/12/13
  are GTIN-14 with leading zeros, which add nothing to the sum.
- GS1 Digital Link: URI Syntax: `scheme://host[/own/path]/{primary AI}/{key}` then the key's
  qualifiers as `/{AI}/{value}` pairs, each optional but in the standard's order (the table
  in identifiers/gs1_keys.py), and data attributes as `?AI=value` in the query. AIs may be
  written as their Digital Link 1.1 short names (`/gtin/…/lot/…/ser/…`, `/gln/…`). Values
  are percent-encoded.
- The canonical identifier suffix of a link (DESIGN §10) is `{AI}/{key}[/{AI}/{value}…]` in
  numeric AIs, a GTIN in its 14-digit form, values percent-encoded where a path segment
  needs it (`/`, `%`, `?`, `"`, `<`, `>` and any non-ASCII): it parses back to the same link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.gs1_keys import (
    ALL_QUALIFIERS,
    CHARSET_82,
    GTIN_AI,
    PRIMARY_KEYS,
    QUALIFIERS,
    SHORT_NAMES,
    PrimaryKey,
    check_digit,
    check_value,
    show_char,
)

__all__ = [
    "CHARSET_82",
    "GTIN_AI",
    "GTIN_LENGTHS",
    "DigitalLink",
    "Gtin",
    "check_digit",
    "complete_gtin",
    "is_valid_gtin",
    "parse_digital_link",
    "parse_digital_link_path",
    "parse_gtin",
    "percent_decode",
]

GTIN_LENGTHS: Final = (8, 12, 13, 14)

_DIGITS: Final = frozenset("0123456789")
# characters a URI may carry unencoded (RFC 3986 unreserved, sub-delims, ':', '@', '/', '?')
_URI_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
)
# what a path segment may carry unencoded (RFC 3986 pchar without pct-encoded)
_SEGMENT_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
)
_HOST_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:[]"
)
_HEX: Final = frozenset("0123456789abcdefABCDEF")


# --- GTIN ---------------------------------------------------------------------------


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
                f"GTIN contains {show_char(ch)} at position {pos}; only digits 0-9 are allowed",
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
    """A GS1 Digital Link URI: a primary key, its qualifiers, attributes and extensions.

    `scheme` and `host` are empty when only the path was given (`01/…/21/…`).
    `primary_ai` is the key's numeric AI and `key` its value (a GTIN as GTIN-14);
    `qualifiers` holds every path key qualifier in order as (AI, value); `attributes` the
    GS1 data attributes of the query (numeric keys); `extensions` any other query
    parameters (such as `linkType`).
    """

    uri: str
    scheme: str
    host: str
    path_prefix: str
    primary_ai: str
    key: str
    qualifiers: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...]
    extensions: tuple[tuple[str, str], ...]

    @property
    def key_title(self) -> str:
        return PRIMARY_KEYS[self.primary_ai].spec.title

    @property
    def gtin(self) -> str | None:
        return self.key if self.primary_ai == GTIN_AI else None

    @property
    def cpv(self) -> str | None:
        return self.qualifier("22")

    @property
    def lot(self) -> str | None:
        return self.qualifier("10")

    @property
    def serial(self) -> str | None:
        return self.qualifier("21")

    def qualifier(self, ai: str) -> str | None:
        return next((value for seen, value in self.qualifiers if seen == ai), None)

    @property
    def element_string(self) -> str:
        """The human-readable GS1 element string, e.g. `(01)09506000134352(10)ABC`."""
        parts = [f"({self.primary_ai}){self.key}"]
        parts += [f"({ai}){value}" for ai, value in self.qualifiers]
        parts += [f"({ai}){value}" for ai, value in self.attributes]
        return "".join(parts)

    def canonical_suffix(self) -> str:
        """`{AI}/{key}[/{AI}/{value}…]`: the identifier suffix of this key (DESIGN §10)."""
        return self.fallback_suffixes()[0]

    def fallback_suffixes(self) -> tuple[str, ...]:
        """The canonical suffix, then each less specific one, dropping qualifiers from the
        right down to the primary key alone: what a resolver looks up, in order."""
        levels = [f"{self.primary_ai}/{encode_segment(self.key)}"]
        for ai, value in self.qualifiers:
            levels.append(f"{levels[-1]}/{ai}/{encode_segment(value)}")
        return tuple(reversed(levels))


def encode_segment(value: str) -> str:
    """Percent-encode what a URI path segment cannot carry as is (upper-case hex)."""
    return "".join(
        ch if ch in _SEGMENT_CHARS else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in value
    )


def _fail(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_DIGITAL_LINK, message)


def _check_uri_chars(text: str, offset: int) -> None:
    for pos, ch in enumerate(text):
        if ch not in _URI_CHARS:
            raise _fail(
                f"{show_char(ch)} at character {offset + pos} is not allowed in a URI; "
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
            raise _fail(f"host contains {show_char(ch)} at character {start + pos}")
    return scheme, host.lower(), end


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse `https://host[/path]/{AI}/{key}[/{AI}/{value}…][?AI=value&…]`."""
    if not isinstance(uri, str):
        raise _fail(f"Digital Link must be text, got {type(uri).__name__}")
    scheme, host, path_start = _split_scheme_and_host(uri)
    return _parse_path_and_query(uri, uri[path_start:], path_start, scheme, host)


def parse_digital_link_path(path: str) -> DigitalLink:
    """Parse the path form without scheme and host: `01/{GTIN}[/10/lot]…[?…]`, `414/{GLN}`."""
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
        raise _fail("no GS1 key: expected /{AI}/{key} (such as /01/{GTIN}) after the host")
    # segments with the position of their first character in `original`
    segments: list[tuple[str, int]] = []
    pos = rest_at + 1
    for text in path[1:].split("/"):
        if not text:
            raise _fail(f"empty path segment at character {pos}")
        segments.append((text, pos))
        pos += len(text) + 1
    key_at = _find_primary_key(segments)
    primary = PRIMARY_KEYS[_ai_name(segments[key_at][0])]
    key = _key_value(primary, *segments[key_at + 1])
    # (AI, raw value, position of the AI, position of the value)
    qualifiers = [
        (_ai_name(ai_text), raw, ai_at, raw_at)
        for (ai_text, ai_at), (raw, raw_at) in zip(
            segments[key_at + 2 :: 2], segments[key_at + 3 :: 2], strict=True
        )
    ]
    _check_qualifier_order(primary, [(ai, ai_at) for ai, _, ai_at, _ in qualifiers])
    values = tuple((ai, _qualifier_value(ai, raw, at)) for ai, raw, _, at in qualifiers)
    attributes, extensions = _parse_query(query, rest_at + len(path) + 1)
    return DigitalLink(
        uri=original,
        scheme=scheme,
        host=host,
        path_prefix="".join("/" + text for text, _ in segments[:key_at]),
        primary_ai=primary.spec.ai,
        key=key,
        qualifiers=values,
        attributes=attributes,
        extensions=extensions,
    )


def _ai_name(segment: str) -> str:
    return SHORT_NAMES.get(segment, segment)


def _find_primary_key(segments: list[tuple[str, int]]) -> int:
    """Index of the primary key's AI segment, found by walking (AI, value) pairs from the
    right.

    Walking from the right lets a host keep its own path before the key
    (`https://example.com/products/01/…`), and lets a value look like an AI (`/10/21`).
    """
    index = len(segments) - 2
    while index >= 0:
        ai = _ai_name(segments[index][0])
        if ai in PRIMARY_KEYS:
            return index
        if ai not in ALL_QUALIFIERS:
            break
        index -= 2
    last_text, last_at = segments[-1]
    last_ai = _ai_name(last_text)
    if last_ai in PRIMARY_KEYS or last_ai in ALL_QUALIFIERS:
        raise _fail(f"AI {last_text} at character {last_at} has no value after it")
    if index >= 0:
        for before in range(index - 2, -1, -2):
            primary = PRIMARY_KEYS.get(_ai_name(segments[before][0]))
            if primary is not None:
                text, at = segments[index]
                raise _fail(
                    f"path segment {text!r} at character {at} is not a key qualifier of "
                    f"{primary.spec.title}: {primary.describe_qualifiers()}"
                )
    raise _fail(
        "no GS1 key: expected /{AI}/{key} in the path, such as /01/{GTIN}, /00/{SSCC}, "
        "/414/{GLN} or /8004/{GIAI}"
    )


def _key_value(primary: PrimaryKey, raw: str, at: int) -> str:
    value = percent_decode(raw, at)
    if primary.spec.ai == GTIN_AI:
        try:
            return parse_gtin(value).gtin14
        except SparkError as exc:
            raise _fail(f"GTIN at character {at}: {exc.message}") from None
    try:
        check_value(primary.spec, value)
    except SparkError as exc:
        raise _fail(f"at character {at}: {exc.message}") from None
    return value


def _qualifier_value(ai: str, raw: str, at: int) -> str:
    value = percent_decode(raw, at)
    try:
        check_value(QUALIFIERS[ai], value)
    except SparkError as exc:
        raise _fail(f"at character {at}: {exc.message}") from None
    return value


def _check_qualifier_order(primary: PrimaryKey, qualifiers: list[tuple[str, int]]) -> None:
    """Qualifiers are a subset of one of the key's qualifier paths, in that path's order."""
    seen: list[str] = []
    for ai, at in qualifiers:
        if ai not in primary.qualifiers:
            raise _fail(
                f"AI {ai} ({QUALIFIERS[ai].title}) at character {at} is not a key qualifier "
                f"of {primary.spec.title}: {primary.describe_qualifiers()}"
            )
        if ai in seen:
            raise _fail(f"key qualifier AI {ai} at character {at} appears twice")
        if seen:
            path = next(p for p in primary.qualifier_paths if seen[0] in p)
            if ai not in path:
                raise _fail(
                    f"key qualifier AI {ai} at character {at} cannot be combined with AI "
                    f"{seen[0]}: {primary.describe_qualifiers()}"
                )
            if path.index(ai) < path.index(seen[-1]):
                raise _fail(
                    f"key qualifier AI {ai} at character {at} comes after AI {seen[-1]}; "
                    f"the order is {', '.join(path)}"
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
    if ai in PRIMARY_KEYS or ai in ALL_QUALIFIERS:
        raise _fail(f"AI {ai} at character {at} is a key or key qualifier; it belongs in the path")
    if any(ai == seen for seen, _ in earlier):
        raise _fail(f"data attribute AI {ai} at character {at} appears twice")
    if not value:
        raise _fail(f"data attribute AI {ai} at character {at} has no value")
