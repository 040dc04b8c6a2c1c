"""Every primary key of GS1 Digital Link (identifiers/gs1_keys.py, identifiers/gs1.py): valid
keys with their qualifiers, check digits, short names, percent-decoding, qualifier order,
the canonical suffix and its fallbacks, and what `spark id check`/`spark register` make of
them (identifiers/schemes.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.gs1 import encode_segment, parse_digital_link, parse_digital_link_path
from sparkchain.identifiers.gs1_keys import (
    CHARSET_39,
    CHARSET_82,
    PRIMARY_KEYS,
    QUALIFIERS,
    SHORT_NAMES,
    check_digit,
    gmn_check_pair,
)
from sparkchain.identifiers.schemes import gs1_canonical_suffix, recognise

DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=300)
HOST = "https://id.example.com"


def with_check(body: str) -> str:
    return body + str(check_digit(body))


# ---- known answers -----------------------------------------------------------------------


def test_the_gmn_check_pair_of_the_general_specifications_example() -> None:
    assert gmn_check_pair("1987654Ad4X4bL5ttr2310c") == "2K"
    assert parse_digital_link_path("8013/1987654Ad4X4bL5ttr2310c2K").key == (
        "1987654Ad4X4bL5ttr2310c2K"
    )


# (path, primary AI, key, qualifiers) for every primary key, each with its qualifiers
VALID = [
    ("00/106141411234567897", "00", "106141411234567897", ()),
    ("253/4602443000331", "253", "4602443000331", ()),
    ("253/4602443000331XYZ%2F1", "253", "4602443000331XYZ/1", ()),
    (f"255/{with_check('081111134000')}123", "255", with_check("081111134000") + "123", ()),
    ("401/9520123AX4567890", "401", "9520123AX4567890", ()),
    (f"402/{with_check('9520123456789012')}", "402", with_check("9520123456789012"), ()),
    ("414/9520123456788", "414", "9520123456788", ()),
    ("414/9520123456788/254/32a%2Fb", "414", "9520123456788", (("254", "32a/b"),)),
    ("415/9520123456788/8020/ABC123", "415", "9520123456788", (("8020", "ABC123"),)),
    ("417/9520123456788", "417", "9520123456788", ()),
    ("8003/03870585000552987", "8003", "03870585000552987", ()),
    ("8004/0614141ASSET-7", "8004", "0614141ASSET-7", ()),
    (
        "8006/095201234567880102/22/V/10/L/21/S",
        "8006",
        "095201234567880102",
        (("22", "V"), ("10", "L"), ("21", "S")),
    ),
    ("8010/95201234AB%23-%2F/8011/123", "8010", "95201234AB#-/", (("8011", "123"),)),
    ("8013/1987654Ad4X4bL5ttr2310c2K", "8013", "1987654Ad4X4bL5ttr2310c2K", ()),
    (f"8017/{with_check('95201234567891234')}/8019/9", "8017", with_check("95201234567891234"),
     (("8019", "9"),)),
    (f"8018/{with_check('95201234567891234')}", "8018", with_check("95201234567891234"), ()),
    ("01/9506000134352/235/TPX-1", "01", "09506000134352", (("235", "TPX-1"),)),
]  # fmt: skip


@pytest.mark.parametrize(("path", "ai", "key", "qualifiers"), VALID)
def test_every_primary_key_parses_with_its_qualifiers(
    path: str, ai: str, key: str, qualifiers: tuple[tuple[str, str], ...]
) -> None:
    link = parse_digital_link(f"{HOST}/{path}")
    assert (link.primary_ai, link.key, link.qualifiers) == (ai, key, qualifiers)
    assert link.key_title == PRIMARY_KEYS[ai].spec.title
    # the canonical suffix is a Digital Link path that reads back as the same key
    again = parse_digital_link_path(link.canonical_suffix())
    assert (again.primary_ai, again.key, again.qualifiers) == (ai, key, qualifiers)


def test_every_primary_key_of_the_issue_is_in_the_table() -> None:
    wanted = {"01", "00", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006"}
    wanted |= {"8010", "8013", "8017", "8018"}
    assert wanted <= set(PRIMARY_KEYS)
    assert {ai for _, ai, _, _ in VALID} == set(PRIMARY_KEYS)  # each one tested above


@pytest.mark.parametrize(
    ("short", "numeric"),
    [
        ("sscc/106141411234567897", "00/106141411234567897"),
        ("gln/9520123456788/glnx/DOCK", "414/9520123456788/254/DOCK"),
        ("party/9520123456788", "417/9520123456788"),
        ("giai/0614141ASSET-7", "8004/0614141ASSET-7"),
        ("grai/03870585000552987", "8003/03870585000552987"),
        ("gdti/4602443000331", "253/4602443000331"),
        ("itip/095201234567880102/lot/L/ser/S", "8006/095201234567880102/10/L/21/S"),
        ("cpid/ABC/cpsn/7", "8010/ABC/8011/7"),
        ("gmn/1987654Ad4X4bL5ttr2310c2K", "8013/1987654Ad4X4bL5ttr2310c2K"),
        ("gtin/09506000134352/cpv/V/lot/L/ser/S", "01/09506000134352/22/V/10/L/21/S"),
        (f"gsrnp/{with_check('95201234567891234')}/srin/1",
         f"8017/{with_check('95201234567891234')}/8019/1"),
    ],
)  # fmt: skip
def test_short_names_read_as_their_numeric_ais(short: str, numeric: str) -> None:
    assert parse_digital_link_path(short).canonical_suffix() == numeric


def test_canonical_suffix_and_fallbacks_drop_qualifiers_from_the_right() -> None:
    link = parse_digital_link(f"{HOST}/gtin/9506000134352/cpv/V%221/lot/A%2FB/ser/S?17=261231")
    assert link.fallback_suffixes() == (
        "01/09506000134352/22/V%221/10/A%2FB/21/S",
        "01/09506000134352/22/V%221/10/A%2FB",
        "01/09506000134352/22/V%221",
        "01/09506000134352",
    )
    assert link.canonical_suffix() == link.fallback_suffixes()[0]
    assert parse_digital_link_path("00/106141411234567897").fallback_suffixes() == (
        "00/106141411234567897",
    )


# ---- refusals name what is wrong ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("00/106141411234567898", "SSCC (AI 00) 106141411234567898 has check digit 8 at "
         "position 17, expected 7"),
        ("00/10614141123456789", "SSCC (AI 00) must have 18 digits, got 17"),
        ("sscc/10614141123456789X", "'X' (U+0058) at position 17; only digits"),
        ("414/9520123456787", "GLN (AI 414) 9520123456787 has check digit 7"),
        ("417/9520123456789", "party GLN (AI 417)"),
        ("253/4602443000332", "GDTI (AI 253) 4602443000332 has check digit 2"),
        ("253/46024430003", "GDTI (AI 253) has 11 characters, at least 13 needed"),
        ("253/4602443000331" + "X" * 18, "at most 30 allowed"),
        ("8003/13870585000552987", "must start with the filler digit 0"),
        ("8006/095201234567890102", "has check digit 9 at position 13, expected 8"),
        ("8006/0952012345678801x2", "in the total of pieces; only digits"),
        ("8004/" + "A" * 31, "GIAI (AI 8004) has 31 characters, at most 30 allowed"),
        ("8004/caf%C3%A9", "'é' (U+00E9) at position 3; GS1 character set 82"),
        ("8010/abc", "'a' (U+0061) at position 0; GS1 character set 39"),
        ("8010/ABC/8011/0123", "number without leading zeros"),
        ("8013/1987654Ad4X4bL5ttr2310c2L", "ends in check characters '2L', expected '2K'"),
        ("01/09506000134352/21/S/22/V", "AI 22 at character 23 comes after AI 21; the order is "
         "22, 10, 21"),
        ("01/09506000134352/235/T/21/S", "cannot be combined with AI 235"),
        ("01/09506000134352/254/X", "AI 254 (GLN extension) at character 18 is not a key "
         "qualifier of GTIN: GTIN (AI 01) takes /22/, /10/, /21/ (in that order), or /235/ alone"),
        ("414/9520123456788/21/S", "not a key qualifier of GLN: GLN (AI 414) takes /254/"),
        ("00/106141411234567897/21/S", "SSCC (AI 00) takes no key qualifiers"),
        ("8018/952012345678912345/8019/1/8019/2", "AI 8019 at character 31 appears twice"),
        ("99/123", "no GS1 key"),
        ("00", "AI 00 at character 0 has no value after it"),
        ("giai", "AI giai at character 0 has no value after it"),
        ("414/9520123456788/glnx", "AI glnx at character 18 has no value after it"),
    ],
)  # fmt: skip
def test_refused_keys_name_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(SparkError) as caught:
        parse_digital_link_path(path)
    assert caught.value.code is ErrorCode.INVALID_DIGITAL_LINK
    assert message in caught.value.message, caught.value.message


# ---- round trips ---------------------------------------------------------------------------


def _digits(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size)


def _chars(alphabet: str, least: int, most: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=least, max_size=most)


def _key_value(ai: str) -> st.SearchStrategy[str]:
    """A valid value of the primary key `ai`, built from its parts."""
    spec = PRIMARY_KEYS[ai].spec
    strategies: list[st.SearchStrategy[str]] = []
    for part in spec.parts:
        if part.charset == "N" and part.check == "mod10":
            body = _digits(part.max_chars - 1)
            if part.leading_zero:
                body = _digits(part.max_chars - 2).map(lambda digits: "0" + digits)
            strategies.append(body.map(with_check))
        elif part.check == "pair":
            data = _chars(CHARSET_82, part.min_chars - 2, part.max_chars - 2)
            strategies.append(data.map(lambda text: text + gmn_check_pair(text)))
        else:
            alphabet = {"N": "0123456789", "X": CHARSET_82, "Y": CHARSET_39}[part.charset]
            strategies.append(_chars(alphabet, part.min_chars, part.max_chars))
    joined: st.SearchStrategy[str] = st.tuples(*strategies).map("".join)
    return joined


def _qualifier_value(ai: str) -> st.SearchStrategy[str]:
    (part,) = QUALIFIERS[ai].parts
    if part.charset == "N":
        first = st.sampled_from("123456789")
        rest = _chars("0123456789", part.min_chars - 1, part.max_chars - 1)
        return st.tuples(first, rest).map("".join)
    return _chars(CHARSET_82, part.min_chars, part.max_chars)


@st.composite
def links(draw: st.DrawFn) -> tuple[str, str, tuple[tuple[str, str], ...], str]:
    """(primary AI, key, qualifiers, URI written with numeric AIs or short names)."""
    ai = draw(st.sampled_from(sorted(PRIMARY_KEYS)))
    primary = PRIMARY_KEYS[ai]
    key = draw(_key_value(ai))
    qualifiers: list[tuple[str, str]] = []
    if primary.qualifier_paths:
        path = draw(st.sampled_from(primary.qualifier_paths))
        for qualifier_ai in path:
            if draw(st.booleans()):
                qualifiers.append((qualifier_ai, draw(_qualifier_value(qualifier_ai))))
    names = {numeric: name for name, numeric in SHORT_NAMES.items()}
    short = draw(st.booleans())

    def name(numeric: str) -> str:
        return names.get(numeric, numeric) if short else numeric

    uri = f"{HOST}/{name(ai)}/{encode_segment(key)}" + "".join(
        f"/{name(q)}/{encode_segment(value)}" for q, value in qualifiers
    )
    return ai, key, tuple(qualifiers), uri


@DETERMINISTIC
@given(links())
def test_a_generated_valid_key_round_trips_through_uri_and_canonical_suffix(
    drawn: tuple[str, str, tuple[tuple[str, str], ...], str],
) -> None:
    ai, key, qualifiers, uri = drawn
    link = parse_digital_link(uri)
    expected_key = key.rjust(14, "0") if ai == "01" else key
    assert (link.primary_ai, link.key, link.qualifiers) == (ai, expected_key, qualifiers)
    canonical = link.canonical_suffix()
    again = parse_digital_link_path(canonical)
    assert (again.primary_ai, again.key, again.qualifiers) == (ai, expected_key, qualifiers)
    assert again.canonical_suffix() == canonical
    assert len(link.fallback_suffixes()) == len(qualifiers) + 1


@DETERMINISTIC
@given(links(), st.integers(min_value=0, max_value=200), st.sampled_from("0123456789xZ%/"))
def test_a_changed_character_never_crashes_and_a_changed_check_digit_is_refused(
    drawn: tuple[str, str, tuple[tuple[str, str], ...], str], at: int, replacement: str
) -> None:
    _, _, _, uri = drawn
    position = len(HOST) + 1 + at % (len(uri) - len(HOST) - 1)
    changed = uri[:position] + replacement + uri[position + 1 :]
    try:
        parse_digital_link(changed)
    except SparkError as exc:
        assert exc.code is ErrorCode.INVALID_DIGITAL_LINK


# ---- what `spark id check` and `spark register` make of them --------------------------------


def test_id_check_recognises_every_key_and_shows_its_canonical_form() -> None:
    for path, ai, _, _ in VALID:
        (match,) = recognise(path)
        assert match.valid, match.problem
        fields = dict(match.fields)
        assert fields["primary_ai"] == ai
        assert fields["canonical"] == parse_digital_link_path(path).canonical_suffix()
    (bad,) = recognise("sscc/106141411234567898")
    assert not bad.valid and bad.problem is not None and "expected 7" in bad.problem


@pytest.mark.parametrize(
    ("suffix", "canonical"),
    [
        ("https://id.gs1.org/01/9506000134352/10/A%2FB?17=261231", "01/09506000134352/10/A%2FB"),
        ("gln/9520123456788", "414/9520123456788"),
        ("9506000134352", "01/09506000134352"),  # GTIN-13
        ("036000291452", "01/00036000291452"),  # GTIN-12
        ("01/09506000134352", "01/09506000134352"),  # already canonical
        ("96385074", None),  # eight digits stay as typed: as often a date as a GTIN-8
        ("9506000134353", None),  # a number that is not a GTIN
        ("SN-0001", None),
    ],
)
def test_register_stores_gs1_keys_in_their_canonical_form(
    suffix: str, canonical: str | None
) -> None:
    assert gs1_canonical_suffix(suffix).suffix == canonical


def test_register_keeps_a_broken_digital_link_as_typed_and_says_why() -> None:
    result = gs1_canonical_suffix("sscc/106141411234567898")
    assert result.suffix is None
    assert result.problem is not None and "expected 7" in result.problem.message
