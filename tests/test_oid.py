"""ISO/ITU-T object identifiers (identifiers/oid.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_OID_CHARS
from sparkchain.identifiers.oid import is_valid_oid, parse_oid

DETERMINISTIC = settings(derandomize=True, deadline=None)


@pytest.mark.parametrize(
    ("text", "arcs", "root"),
    [
        ("1.2.840.113549", (1, 2, 840, 113549), "iso"),  # RSA Data Security (PKCS)
        ("2.5.4.3", (2, 5, 4, 3), "joint-iso-itu-t"),  # X.520 id-at-commonName
        ("1.3.6.1.4.1", (1, 3, 6, 1, 4, 1), "iso"),  # IANA private enterprises
        ("0.9.2342.19200300.100.1.1", (0, 9, 2342, 19200300, 100, 1, 1), "itu-t"),  # uid
        ("1.2.156", (1, 2, 156), "iso"),  # ISO member body: China
        ("2.16.156", (2, 16, 156), "joint-iso-itu-t"),  # country: China
        ("1.39", (1, 39), "iso"),  # the largest second arc under 1
        ("2.999", (2, 999), "joint-iso-itu-t"),  # the example arc: > 39 is fine under 2
        # X.667: a UUID as one integer arc under 2.25
        (
            "2.25.329800735698586629295641978511506172918",
            (2, 25, 329800735698586629295641978511506172918),
            "joint-iso-itu-t",
        ),
    ],
)
def test_published_oids_parse(text: str, arcs: tuple[int, ...], root: str) -> None:
    oid = parse_oid(text)
    assert oid.arcs == arcs
    assert oid.root == root
    assert str(oid) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "OID is empty"),
        ("3.1", "first arc must be 0, 1 or 2, got 3"),
        ("1.40", "second arc must be at most 39 under 1 (iso), got 40"),
        ("0.40.1", "at most 39 under 0 (itu-t), got 40"),
        ("1.2.0840", "arc 3 ('0840', at character 4) has a leading zero"),
        ("01.2", "arc 1 ('01', at character 0) has a leading zero"),
        ("1..2", "arc 2 is empty (at character 2)"),
        (".1.2", "arc 1 is empty (at character 0)"),
        ("1.2.", "arc 3 is empty (at character 4)"),
        ("1.2.a", "'a' (U+0061) at character 4"),
        ("1.2.-3", "'-' (U+002D) at character 4"),
        ("1.2 ", "' ' (U+0020) at character 3"),
        ("1.٣", "U+0663"),  # an Arabic-Indic digit is a digit to Python, not to OIDs
        ("1", "has one arc; at least two are needed"),
        ("1." + "1" * MAX_OID_CHARS, f"at most {MAX_OID_CHARS} allowed"),
    ],
)
def test_invalid_oids_name_what_and_where(text: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_oid(text)
    assert caught.value.code is ErrorCode.INVALID_OID
    assert message in caught.value.message, caught.value.message


arcs_strategy = st.tuples(
    st.sampled_from([0, 1, 2]), st.integers(0, 39), st.lists(st.integers(0, 2**70), max_size=8)
)


@DETERMINISTIC
@given(arcs_strategy)
def test_generated_oids_round_trip(parts: tuple[int, int, list[int]]) -> None:
    first, second, rest = parts
    arcs = (first, second, *rest)
    text = ".".join(map(str, arcs))
    oid = parse_oid(text)
    assert oid.arcs == arcs
    assert parse_oid(str(oid)) == oid


@DETERMINISTIC
@given(st.one_of(st.text(), st.text(alphabet="0123456789."), st.binary(), st.none()))
def test_random_input_never_crashes_the_oid_parser(value: object) -> None:
    try:
        oid = parse_oid(value)  # type: ignore[arg-type]
    except SparkError as exc:
        assert exc.code is ErrorCode.INVALID_OID
    else:
        assert ".".join(map(str, oid.arcs)) == value


def test_is_valid_oid() -> None:
    assert is_valid_oid("1.2.840.113549")
    assert not is_valid_oid("1.2.840.")
