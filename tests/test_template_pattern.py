"""Template patterns (ledger/template_pattern.py): the subset matches as a regular expression
search would, refuses what is outside it, and never backtracks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkchain.identifiers.limits import MAX_TEMPLATE_PATTERN_CHARS, MAX_TEMPLATE_PATTERN_REPEAT
from sparkchain.ledger.template_pattern import PatternError, compile_pattern


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^L\d{4}$", "L2025", True),
        (r"^L\d{4}$", "L202", False),
        (r"^L\d{4}$", "L20255", False),
        (r"\d+", "lot 42 of 50", True),
        (r"^\d+$", "lot 42", False),
        (r"^[A-Z][a-z0-9_-]*$", "Abc_9-x", True),
        (r"^[A-Z][a-z0-9_-]*$", "abc", False),
        (r"^[^ ]+$", "no-spaces", True),
        (r"^[^ ]+$", "one space", False),
        (r"^a.c$", "abc", True),
        (r"^a.c$", "a\nc", False),
        (r"^\w\W\s\S$", "a- b", True),
        (r"^x?y*z+$", "z", True),
        (r"^x?y*z+$", "xyyy", False),
        (r"^a{2,3}$", "aaaa", False),
        (r"^a{2,}$", "aaaaaaa", True),
        (r"^\$\.\\$", "$.\\", True),
        (r"", "anything", True),
        (r"^$", "", True),
        (r"^$", "x", False),
        (r"^[\d.]+$", "1.2.3", True),
        (r"^é+$", "éé", True),
    ],
)
def test_patterns_match_as_a_search(pattern: str, text: str, matches: bool) -> None:
    assert compile_pattern(pattern).search(text) is matches


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("(a|b)", "groups and alternation"),
        ("a|b", "groups and alternation"),
        ("a+?", "lazy and nested"),
        ("a**", "lazy and nested"),
        ("*a", "has nothing to apply to"),
        ("[abc", "never closed"),
        ("[z-a]", "goes backwards"),
        (r"\1", "not in the supported subset"),
        (r"\p{L}", "not in the supported subset"),
        ("a{1001}", f"above {MAX_TEMPLATE_PATTERN_REPEAT}"),
        ("a{3,2}", "maximum below its minimum"),
        ("a{x}", "is not a count"),
        ("a" * (MAX_TEMPLATE_PATTERN_CHARS + 1), f"at most {MAX_TEMPLATE_PATTERN_CHARS}"),
        ("ab\\", "ends the pattern"),
        ("a^b", "has nothing to apply to"),
    ],
)
def test_patterns_outside_the_subset_are_refused_with_the_reason(pattern: str, says: str) -> None:
    with pytest.raises(PatternError, match=re.escape(says)):
        compile_pattern(pattern)


def test_a_pattern_that_backtracks_exponentially_in_re_is_linear_here() -> None:
    # `(a*)*b`-like blow-ups need groups, which are refused; the worst left is many
    # overlapping quantifiers, which re explores polynomially (here: ~n**20 paths)
    pattern = compile_pattern("^" + "a*" * 20 + "b$")
    assert pattern.search("a" * 5000) is False
    assert pattern.search("a" * 5000 + "b") is True


_ATOMS = st.sampled_from(["a", "b", ".", r"\d", r"\w", r"\s", "[ab]", "[^a]", "[0-9x]", r"\."])
_QUANTIFIERS = st.sampled_from(["", "?", "*", "+", "{2}", "{1,3}", "{0,}", "{2,}"])


@st.composite
def subset_patterns(draw: st.DrawFn) -> str:
    atoms = draw(st.lists(st.tuples(_ATOMS, _QUANTIFIERS), max_size=6))
    body = "".join(atom + quantifier for atom, quantifier in atoms)
    return ("^" if draw(st.booleans()) else "") + body + ("$" if draw(st.booleans()) else "")


@settings(max_examples=400, deadline=None)
@given(subset_patterns(), st.text(alphabet="ab1x. \n", max_size=12))
def test_the_subset_agrees_with_a_backtracking_regex_engine(pattern: str, text: str) -> None:
    # on short texts Python's re is a fine oracle: ASCII classes, `.` without newlines,
    # and `$` only at the very end (\Z), as in ECMA-262 without the multiline flag
    oracle = re.compile(
        pattern.removesuffix("$") + ("\\Z" if pattern.endswith("$") else ""), re.ASCII
    )
    assert compile_pattern(pattern).search(text) is (oracle.search(text) is not None)
