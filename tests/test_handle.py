"""Handle-style identifiers and prefixes (identifiers/handle.py, DESIGN §2)."""

from __future__ import annotations

import random
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import (
    Identifier,
    ascii_upper,
    identifier_key,
    identifier_under,
    is_under,
    parse_identifier,
    parse_prefix,
)
from sparkchain.identifiers.limits import (
    MAX_IDENTIFIER_BYTES,
    MAX_PREFIX_SEGMENTS,
    MAX_SUFFIX_BYTES,
)

DETERMINISTIC = settings(derandomize=True, deadline=None)

SEGMENT_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
segments = st.text(alphabet=SEGMENT_ALPHABET, min_size=1, max_size=12)
prefixes = st.lists(segments, min_size=1, max_size=MAX_PREFIX_SEGMENTS).map(".".join)
suffixes = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs")), min_size=1, max_size=60
    )
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: s == s.strip() and len(s.encode()) <= MAX_SUFFIX_BYTES)
)


@st.composite
def identifiers(draw: st.DrawFn) -> str:
    text = f"{draw(prefixes)}/{draw(suffixes)}"
    assume(len(text.encode()) <= MAX_IDENTIFIER_BYTES)
    return text


# --- properties ---------------------------------------------------------------------------


@DETERMINISTIC
@given(identifiers())
def test_parse_of_display_round_trips(text: str) -> None:
    parsed = parse_identifier(text)
    assert parsed.display == text
    assert parse_identifier(parsed.display) == parsed
    assert f"{parsed.prefix.display}/{parsed.suffix}" == text


@DETERMINISTIC
@given(identifiers())
def test_normalisation_is_idempotent(text: str) -> None:
    key = parse_identifier(text).key
    assert parse_identifier(key).key == key
    assert identifier_key(key) == key


@DETERMINISTIC
@given(identifiers(), st.randoms(use_true_random=False))
def test_ascii_case_does_not_change_the_key(text: str, rng: random.Random) -> None:
    respelled = "".join(
        c.swapcase() if c.isascii() and c.isalpha() and rng.random() < 0.5 else c for c in text
    )
    assert parse_identifier(respelled).key == parse_identifier(text).key
    assert parse_identifier(respelled).display == respelled


@DETERMINISTIC
@given(prefixes)
def test_prefix_ancestors_are_its_dotted_heads(text: str) -> None:
    prefix = parse_prefix(text)
    parts = text.split(".")
    assert [p.display for p in prefix.ancestors()] == [
        ".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)
    ]
    assert all(is_under(prefix, ancestor) for ancestor in prefix.ancestors())


@DETERMINISTIC
@given(st.one_of(st.text(), st.binary(), st.none(), st.integers()))
def test_random_input_never_crashes_the_parsers(value: object) -> None:
    for parse, code in (
        (parse_identifier, ErrorCode.INVALID_IDENTIFIER),
        (parse_prefix, ErrorCode.INVALID_PREFIX),
    ):
        try:
            parse(value)  # type: ignore[operator]
        except SparkError as exc:
            assert exc.code is code


@DETERMINISTIC
@given(st.binary(max_size=300))
def test_random_bytes_as_text_never_crash_the_parser(raw: bytes) -> None:
    for text in (raw.decode("latin-1"), raw.decode("utf-8", errors="surrogateescape")):
        try:
            parse_identifier("88.608/" + text)
        except SparkError as exc:
            assert exc.code is ErrorCode.INVALID_IDENTIFIER


# --- the grammar, one rule at a time ------------------------------------------------------


def test_known_identifier() -> None:
    parsed = parse_identifier("88.608.24161301/SN-0001")
    assert parsed == Identifier(
        "88.608.24161301/SN-0001",
        "88.608.24161301/SN-0001",
        parse_prefix("88.608.24161301"),
        "SN-0001",
    )
    assert [p.display for p in parsed.prefix.ancestors()] == ["88.608", "88"]
    assert parse_prefix("88").parent() is None


def test_key_upper_cases_ascii_letters_only() -> None:
    parsed = parse_identifier("88.abc/straße-é-x")
    assert parsed.key == "88.ABC/STRAßE-é-X"  # no Unicode case folding
    assert ascii_upper("ß-é-z") == "ß-é-Z"


def test_slash_is_allowed_inside_a_suffix() -> None:
    parsed = parse_identifier("88.608/a/b/c")
    assert (parsed.prefix.display, parsed.suffix) == ("88.608", "a/b/c")


def test_is_under_respects_segment_boundaries() -> None:
    assert is_under(parse_prefix("88.608.1"), parse_prefix("88.608"))
    assert is_under(parse_prefix("88.608"), parse_prefix("88.608"))
    assert not is_under(parse_prefix("88.6081"), parse_prefix("88.608"))


def test_limits_are_inclusive() -> None:
    eight = ".".join(["a"] * MAX_PREFIX_SEGMENTS)
    assert len(parse_prefix(eight).segments) == MAX_PREFIX_SEGMENTS
    parse_identifier("88/" + "é" * (MAX_SUFFIX_BYTES // 2))  # 200 bytes, 100 characters
    longest = "a" * (MAX_IDENTIFIER_BYTES - 1 - MAX_SUFFIX_BYTES) + "/" + "s" * MAX_SUFFIX_BYTES
    assert len(longest.encode()) == MAX_IDENTIFIER_BYTES
    parse_identifier(longest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("88.608", "has no '/' between prefix and suffix"),
        ("/x", "prefix is empty"),
        ("88.608/", "suffix is empty"),
        ("88..608/x", "prefix segment 2 is empty (at character 3)"),
        ("88.608./x", "prefix segment 3 is empty (at character 7)"),
        ("88.6_08/x", "U+005F (LOW LINE) '_' at character 4"),
        ("88.é/x", "U+00E9"),
        (".".join(["a"] * 9) + "/x", "prefix has 9 segments, at most 8 allowed"),
        ("88.608/a\x07b", "control character U+0007 at byte 1"),
        ("88.608/é\x00", "control character U+0000 at byte 2"),  # bytes, not characters
        ("88.608/a\x85", "control character U+0085 at byte 1"),  # C1 controls too
        ("88.608/\ud800", "lone surrogate U+D800 at byte 0"),
        # finding 12: text that looks like another identifier (DESIGN §2)
        ("88.1/A0\u202egpj.exe", "format character U+202E (RIGHT-TO-LEFT OVERRIDE) at byte 2"),
        ("88.1/SN\u200b1", "format character U+200B (ZERO WIDTH SPACE) at byte 2"),
        ("88.1/\ufeffSN", "format character U+FEFF (ZERO WIDTH NO-BREAK SPACE) at byte 0"),
        ("88.1/\u00e9\u00ad", "format character U+00AD (SOFT HYPHEN) at byte 2"),
        ("88.1/Cafe\u0301", "not in Unicode NFC (normalise it first) from byte 3"),
        ("88.1/\u212b", "not in Unicode NFC (normalise it first) from byte 0"),
        ("88.608/ x", "leading or trailing whitespace"),
        ("88.608/x\u3000", "leading or trailing whitespace"),
        ("88/" + "s" * (MAX_SUFFIX_BYTES + 1), "201 bytes of UTF-8, at most 200"),
        ("88/" + "é" * 101, "202 bytes of UTF-8, at most 200"),
        ("a" * 60 + "/" + "s" * 195, "256 bytes of UTF-8, at most 255"),
    ],
)
def test_invalid_identifiers_name_what_and_where(text: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_identifier(text)
    assert caught.value.code is ErrorCode.INVALID_IDENTIFIER
    assert message in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "prefix is empty"),
        ("88/1", "U+002F (SOLIDUS) '/' at character 2"),
        ("88. 1", "U+0020 (SPACE) ' ' at character 3"),
    ],
)
def test_invalid_prefixes_name_what_and_where(text: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_prefix(text)
    assert caught.value.code is ErrorCode.INVALID_PREFIX
    assert message in caught.value.message, caught.value.message


@DETERMINISTIC
@given(
    st.one_of(
        identifiers(),
        st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=260),
        st.text(max_size=40),
    )
)
def test_identifier_key_answers_as_parse_identifier_does(text: str) -> None:
    """identifier_key's fast path (resolves use it) accepts, keys and refuses exactly as
    parse_identifier does, with the same error code."""
    try:
        expected: str | ErrorCode = parse_identifier(text).key
    except SparkError as exc:
        expected = exc.code
    try:
        got: str | ErrorCode = identifier_key(text)
    except SparkError as exc:
        got = exc.code
    assert got == expected


def test_identifier_key_refuses_a_long_suffix_and_non_text() -> None:
    long_suffix = "88/" + "S" * 201
    with pytest.raises(SparkError) as caught:
        identifier_key(long_suffix)
    assert caught.value.code == ErrorCode.INVALID_IDENTIFIER
    assert identifier_key("88.608/ab-1") == "88.608/AB-1"
    with pytest.raises(SparkError):
        identifier_key(b"88/x")  # type: ignore[arg-type]


@DETERMINISTIC
@given(
    prefixes,
    st.one_of(
        suffixes,
        st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=260),
        st.text(max_size=40),
    ),
)
def test_identifier_under_answers_as_parse_identifier_does(prefix: str, suffix: str) -> None:
    """A batch's items (identifier_under: the prefix parsed once) are accepted, keyed and
    refused exactly as parse_identifier accepts, keys and refuses the whole identifier."""
    text = f"{prefix}/{suffix}"
    try:
        parsed = parse_identifier(text)
        expected: tuple[str, str] | tuple[ErrorCode, str] = (parsed.display, parsed.key)
    except SparkError as exc:
        expected = (exc.code, exc.message)
    try:
        got: tuple[str, str] | tuple[ErrorCode, str] = identifier_under(
            parse_prefix(prefix), suffix
        )
    except SparkError as exc:
        got = (exc.code, exc.message)
    assert got == expected


def test_identifier_under_checks_the_suffix_and_the_whole_length() -> None:
    prefix = parse_prefix("88.608")
    assert identifier_under(prefix, "ab-1/x y") == ("88.608/ab-1/x y", "88.608/AB-1/X Y")
    for suffix in (" lead", "trail ", "S" * (MAX_SUFFIX_BYTES + 1), "tab\there", ""):
        with pytest.raises(SparkError) as caught:
            identifier_under(prefix, suffix)
        assert caught.value.code == ErrorCode.INVALID_IDENTIFIER
    long_prefix = parse_prefix(".".join(["P" * 40] * MAX_PREFIX_SEGMENTS))
    with pytest.raises(SparkError) as caught:
        identifier_under(long_prefix, "S" * MAX_SUFFIX_BYTES)
    assert caught.value.code == ErrorCode.INVALID_IDENTIFIER
