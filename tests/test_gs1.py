"""GS1 GTIN check digits and Digital Link URIs (identifiers/gs1.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.gs1 import (
    check_digit,
    complete_gtin,
    is_valid_gtin,
    parse_digital_link,
    parse_digital_link_path,
    parse_gtin,
)

DETERMINISTIC = settings(derandomize=True, deadline=None)

gtin_bodies = st.sampled_from((7, 11, 12, 13)).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
)


# --- known answers -----------------------------------------------------------------------


def test_gs1_general_specifications_example_by_hand() -> None:
    # GTIN-13 data digits 6 2 9 1 0 4 1 5 0 0 2 1, weights 3,1,3,... from the right:
    # 1*3 + 2*1 + 0*3 + 0*1 + 5*3 + 1*1 + 4*3 + 0*1 + 1*3 + 9*1 + 2*3 + 6*1 = 57,
    # and 60 - 57 = 3
    assert check_digit("629104150021") == 3
    assert parse_gtin("6291041500213").digits == "6291041500213"


@pytest.mark.parametrize(
    ("gtin", "kind"),
    [
        ("96385074", "GTIN-8"),  # the usual EAN-8 example
        ("036000291452", "GTIN-12"),  # the usual UPC-A example
        ("4006381333931", "GTIN-13"),  # the usual EAN-13 example
        ("09506000134352", "GTIN-14"),  # GS1 Digital Link standard examples
        ("09521234543213", "GTIN-14"),
    ],
)
def test_published_gtins_validate(gtin: str, kind: str) -> None:
    parsed = parse_gtin(gtin)
    assert parsed.kind == kind
    assert parsed.gtin14 == gtin.rjust(14, "0")
    assert complete_gtin(gtin[:-1]) == parsed


def test_leading_zeros_do_not_change_the_check_digit() -> None:
    # a GTIN-13 padded to GTIN-14 is the same GTIN: zeros add nothing to the sum
    assert is_valid_gtin("4006381333931")
    assert is_valid_gtin("04006381333931")
    assert parse_gtin("4006381333931").gtin14 == "04006381333931"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4006381333932", "check digit 2 at position 12, expected 1"),
        ("40063813339", "8, 12, 13 or 14 digits, got 11"),
        ("40063813339x1", "'x' (U+0078) at position 11"),
        ("", "got 0"),
        ("123456789012345", "got 15"),
        ("４００６３８１３３３９３１", "U+FF14"),  # full-width digits are not digits here
    ],
)
def test_invalid_gtins_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_gtin(text)
    assert caught.value.code is ErrorCode.INVALID_GTIN
    assert message in caught.value.message


def test_gtin12_body_of_wrong_length_is_named() -> None:
    with pytest.raises(SparkError, match="7, 11, 12 or 13 digits, got 9"):
        complete_gtin("123456789")


# --- properties ---------------------------------------------------------------------------


@DETERMINISTIC
@given(gtin_bodies)
def test_every_body_gets_a_check_digit_that_validates(body: str) -> None:
    gtin = complete_gtin(body)
    assert gtin.digits[:-1] == body
    assert is_valid_gtin(gtin.digits)
    assert is_valid_gtin(gtin.gtin14)


@DETERMINISTIC
@given(gtin_bodies)
def test_every_single_digit_change_is_rejected(body: str) -> None:
    # weights are 1 and 3, both coprime to 10: w * (new - old) is never 0 mod 10
    digits = complete_gtin(body).digits
    for pos, old in enumerate(digits):
        for new in "0123456789":
            if new != old:
                changed = digits[:pos] + new + digits[pos + 1 :]
                assert not is_valid_gtin(changed), (digits, changed)


def transposition_is_detected(a: int, b: int) -> bool:
    """Swapping adjacent digits a, b (weights 3 and 1) changes the sum by ±2(a - b).

    That is 0 mod 10 exactly when a - b is 0 mod 5: equal digits (no change at all) or
    digits five apart (0-5, 1-6, 2-7, 3-8, 4-9), which mod-10 cannot detect.
    """
    return (a - b) % 5 != 0


@DETERMINISTIC
@given(gtin_bodies)
def test_adjacent_transpositions_are_rejected_exactly_when_mod10_detects_them(
    body: str,
) -> None:
    digits = complete_gtin(body).digits
    for pos in range(len(digits) - 1):
        a, b = digits[pos], digits[pos + 1]
        if a == b:
            continue
        swapped = digits[:pos] + b + a + digits[pos + 2 :]
        assert is_valid_gtin(swapped) is not transposition_is_detected(int(a), int(b)), (
            digits,
            swapped,
        )


def test_undetectable_transposition_really_exists() -> None:
    # 0 and 5 swapped in 4006381333931 -> neither sum changes mod 10
    assert check_digit("050") == check_digit("005") == check_digit("500")
    assert transposition_is_detected(1, 2) and not transposition_is_detected(0, 5)


@DETERMINISTIC
@given(st.one_of(st.text(), st.binary(), st.none(), st.integers()))
def test_random_input_never_crashes_the_gtin_parser(value: object) -> None:
    try:
        parse_gtin(value)  # type: ignore[arg-type]
    except SparkError as exc:
        assert exc.code is ErrorCode.INVALID_GTIN


# --- GS1 Digital Link --------------------------------------------------------------------


def test_digital_link_with_every_gtin_qualifier() -> None:
    link = parse_digital_link("https://id.gs1.org/01/09506000134352/22/V1/10/ABC/21/12345")
    assert (link.scheme, link.host, link.path_prefix) == ("https", "id.gs1.org", "")
    assert link.gtin == "09506000134352"
    assert (link.cpv, link.lot, link.serial) == ("V1", "ABC", "12345")
    assert link.qualifiers == (("22", "V1"), ("10", "ABC"), ("21", "12345"))
    assert link.element_string == "(01)09506000134352(22)V1(10)ABC(21)12345"


def test_short_gtin_in_a_link_becomes_gtin14() -> None:
    link = parse_digital_link("https://example.com/01/4006381333931")
    assert link.gtin == "04006381333931"
    assert link.lot is link.serial is link.cpv is None


def test_percent_encoded_values_are_decoded() -> None:
    link = parse_digital_link("https://id.gs1.org/01/09506000134352/10/AB%2F1%25/21/x%3Fy")
    assert link.lot == "AB/1%"
    assert link.serial == "x?y"


def test_host_may_keep_its_own_path_before_the_key() -> None:
    link = parse_digital_link("HTTP://Example.COM/shop/items/01/09506000134352/21/S1")
    assert (link.scheme, link.host) == ("http", "example.com")
    assert link.path_prefix == "/shop/items"
    assert link.serial == "S1"


def test_values_that_look_like_ais_are_values() -> None:
    link = parse_digital_link("https://id.gs1.org/01/09506000134352/10/21/21/10")
    assert (link.lot, link.serial) == ("21", "10")


def test_query_holds_data_attributes_and_extensions_and_fragment_is_ignored() -> None:
    link = parse_digital_link(
        "https://id.gs1.org/01/09506000134352/10/ABC?17=261231&3103=000195&linkType=gs1:pip#top"
    )
    assert link.attributes == (("17", "261231"), ("3103", "000195"))
    assert link.extensions == (("linkType", "gs1:pip"),)
    assert link.element_string == "(01)09506000134352(10)ABC(17)261231(3103)000195"


def test_third_party_serial_qualifier_alone() -> None:
    link = parse_digital_link("https://id.gs1.org/01/09506000134352/235/TPX-123")
    assert link.qualifiers == (("235", "TPX-123"),)
    assert link.serial is None


def test_convenience_names_of_digital_link_1_1_are_read() -> None:
    link = parse_digital_link("https://id.gs1.org/gtin/09506000134352/lot/ABC/ser/7")
    assert (link.gtin, link.lot, link.serial) == ("09506000134352", "ABC", "7")


def test_path_form_without_scheme_and_host() -> None:
    link = parse_digital_link_path("01/09506000134352/10/L1")
    assert (link.scheme, link.host, link.uri) == ("", "", "01/09506000134352/10/L1")
    assert link.lot == "L1"
    with pytest.raises(SparkError, match=r"'x' .* at position 13") as caught:
        parse_digital_link_path("01/0950600013435x")
    assert "at character 3" in caught.value.message  # counted in the path as given


LINK = "https://id.gs1.org/01/09506000134352"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://id.gs1.org/01/09506000134352", "starts with https:// or http://"),
        ("https:///01/09506000134352", "no host (at character 8)"),
        ("https://id.gs1.org", "no GS1 key"),
        ("https://id.gs1.org/products", "no GS1 key"),
        ("https://id.gs1.org/01/09506000134353", "check digit 3 at position 13, expected 2"),
        ("https://id.gs1.org/01/09506000134", "GTIN at character 22: GTIN must have 8"),
        (LINK + "/21/S/10/L", "AI 10 at character 42 comes after AI 21"),
        (LINK + "/10/L/10/M", "appears twice"),
        (LINK + "/235/T/21/S", "cannot be combined"),
        (LINK + "/10", "AI 10 at character 37 has no value"),
        (LINK + "/99/x", "'99' at character 37 is not a key qualifier of GTIN"),
        (LINK + "/10/a b", "' ' (U+0020) at character 41 is not allowed in a URI"),
        (LINK + "/10/a%2", "'%' at character 41 is not followed by two hex digits"),
        (LINK + "/10/%FF", "not UTF-8"),
        (LINK + "/10/%C3%A9", "'é' (U+00E9) at position 0; GS1 character set 82"),
        (LINK + "/10/" + "L" * 21, "21 characters, at most 20"),
        (LINK + "/", "empty path segment at character 37"),
        (LINK + "?10=ABC", "AI 10 at character 37 is a key or key qualifier"),
        (LINK + "?17=1&17=2", "appears twice"),
        (LINK + "?17=", "has no value"),
        (LINK + "?12345=1", "not a GS1 AI"),
        ("https://id.gs1.org/414/9506000134353", "GLN (AI 414) 9506000134353 has check digit 3"),
        ("https://id.gs1.org/01/09506000134352/10/ü", "'ü' (U+00FC)"),
    ],
)
def test_invalid_digital_links_name_what_and_where(uri: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_digital_link(uri)
    assert caught.value.code is ErrorCode.INVALID_DIGITAL_LINK
    assert message in caught.value.message, caught.value.message


@DETERMINISTIC
@given(st.one_of(st.text(), st.binary(), st.none()))
def test_random_input_never_crashes_the_link_parsers(value: object) -> None:
    for parse in (parse_digital_link, parse_digital_link_path):
        try:
            parse(value)  # type: ignore[arg-type]
        except SparkError as exc:
            assert exc.code is ErrorCode.INVALID_DIGITAL_LINK


link_tails = st.lists(
    st.one_of(
        st.sampled_from(["01", "10", "21", "22", "235", "gtin", "09506000134352", "", "%", "?"]),
        st.text(max_size=8),
    ),
    max_size=8,
).map("/".join)


@DETERMINISTIC
@given(link_tails)
def test_near_valid_links_never_crash(tail: str) -> None:
    for text in ("https://id.gs1.org/" + tail, tail):
        for parse in (parse_digital_link, parse_digital_link_path):
            try:
                link = parse(text)
            except SparkError as exc:
                assert exc.code is ErrorCode.INVALID_DIGITAL_LINK
            else:
                assert link.primary_ai != "01" or is_valid_gtin(link.key)


charset82 = st.text(
    alphabet="!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
    min_size=1,
    max_size=20,
)


def percent_encode(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else f"%{ord(c):02X}" for c in value)


@DETERMINISTIC
@given(gtin_bodies, st.none() | charset82, st.none() | charset82, st.none() | charset82)
def test_built_links_parse_back(
    body: str, cpv: str | None, lot: str | None, serial: str | None
) -> None:
    gtin = complete_gtin(body)
    uri = f"https://id.gs1.org/01/{gtin.digits}"
    for ai, value in (("22", cpv), ("10", lot), ("21", serial)):
        if value is not None:
            uri += f"/{ai}/{percent_encode(value)}"
    link = parse_digital_link(uri)
    assert (link.gtin, link.cpv, link.lot, link.serial) == (gtin.gtin14, cpv, lot, serial)
