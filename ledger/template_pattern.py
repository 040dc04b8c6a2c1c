"""`pattern` of a metadata template (docs/templates.md): a regular-expression subset that
every validator matches in time linear in the text, whatever the pattern.

Python's `re` backtracks and can take exponential time (`(a+)+$` against `aaaa…b`); a
consensus rule that every validator runs must not. So a template's pattern is compiled
here into a sequence of atoms, each a set of characters with a repeat count, and matched
bit-parallel: the set of text positions reachable after each atom is one integer, so a
match costs O(atoms × text length) whatever the text.

The subset (ECMA-262 syntax, the meaning JSON Schema gives `pattern`: it matches anywhere in
the text unless anchored):
- `^` as the first and `$` as the last character anchor the match;
- an atom is a literal character, `.` (any character but a line terminator), `\\d \\D \\w
  \\W \\s \\S` (ASCII digits, ASCII word characters, whitespace), `\\` before punctuation (that
  character), or a class `[...]` / `[^...]` of characters, ranges `a-z` and `\\d \\w \\s`;
- an atom may be followed by one quantifier: `?`, `*`, `+`, `{m}`, `{m,}` or `{m,n}` with
  n ≤ MAX_TEMPLATE_PATTERN_REPEAT.
Groups, alternation, backreferences, lookaround and lazy quantifiers are refused when the
template is written, with the position: alternatives are written as an `enum` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkchain.identifiers.limits import (
    MAX_TEMPLATE_PATTERN_CHARS,
    MAX_TEMPLATE_PATTERN_REPEAT,
)

_DIGITS = ((0x30, 0x39),)
_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
# ECMA-262 WhiteSpace and LineTerminator
_SPACE = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
)
_LINE_TERMINATORS = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_CLASS_ESCAPES = {"d": _DIGITS, "w": _WORD, "s": _SPACE}
_SPECIAL = set("()|*+?{}[]^$.\\")
_UNBOUNDED = -1


class PatternError(ValueError):
    """A pattern outside the subset; the message names the position."""


@dataclass(frozen=True, slots=True)
class CharSet:
    """Characters whose code point is in one of `ranges` (or in none, when negated)."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def __contains__(self, char: str) -> bool:
        point = ord(char)
        inside = any(low <= point <= high for low, high in self.ranges)
        return inside != self.negated


@dataclass(frozen=True, slots=True)
class Atom:
    chars: CharSet
    min_repeat: int
    max_repeat: int  # _UNBOUNDED for `*`, `+`, `{m,}`


@dataclass(frozen=True, slots=True)
class Pattern:
    source: str
    atoms: tuple[Atom, ...]
    anchored_start: bool
    anchored_end: bool

    def search(self, text: str) -> bool:
        """True when the pattern matches somewhere in `text` (at its ends if anchored)."""
        size = len(text)
        everywhere = (1 << (size + 1)) - 1  # bit i: "the match may be at text position i"
        reach = 1 if self.anchored_start else everywhere
        masks: dict[CharSet, int] = {}
        for atom in self.atoms:
            mask = masks.get(atom.chars)
            if mask is None:
                bits = "".join("1" if char in atom.chars else "0" for char in reversed(text))
                mask = masks[atom.chars] = int(bits, 2) if bits else 0
            reach = _advance(reach, mask, atom.min_repeat, atom.max_repeat)
            if not reach:
                return False
        if self.anchored_end:
            return bool(reach >> size & 1)
        return True


def _advance(reach: int, mask: int, min_repeat: int, max_repeat: int) -> int:
    """Positions reachable from `reach` over min..max characters that are in `mask`."""
    for _ in range(min_repeat):
        reach = (reach & mask) << 1
        if not reach:
            return 0
    if max_repeat == _UNBOUNDED:
        # every position p in reach extends over the run of mask bits starting at p: adding
        # those bits to the mask carries through the run, and the bits that flipped are the
        # run and the position after it
        return reach | ((reach & mask) + mask) ^ mask
    for _ in range(max_repeat - min_repeat):
        extended = reach | (reach & mask) << 1
        if extended == reach:
            break
        reach = extended
    return reach


def compile_pattern(source: str) -> Pattern:
    """The pattern `source`, or PatternError naming what is outside the subset and where."""
    if len(source) > MAX_TEMPLATE_PATTERN_CHARS:
        raise PatternError(
            f"is {len(source)} characters, at most {MAX_TEMPLATE_PATTERN_CHARS} allowed"
        )
    body = source
    anchored_start = body.startswith("^")
    if anchored_start:
        body = body[1:]
    anchored_end = body.endswith("$") and not _escaped_at_end(body)
    if anchored_end:
        body = body[:-1]
    offset = 1 if anchored_start else 0
    atoms: list[Atom] = []
    pos = 0
    while pos < len(body):
        chars, pos = _atom(body, pos, offset)
        min_repeat, max_repeat, pos = _quantifier(body, pos, offset)
        atoms.append(Atom(chars, min_repeat, max_repeat))
    return Pattern(source, tuple(atoms), anchored_start, anchored_end)


def _escaped_at_end(body: str) -> bool:
    backslashes = len(body[:-1]) - len(body[:-1].rstrip("\\"))
    return backslashes % 2 == 1


def _atom(body: str, pos: int, offset: int) -> tuple[CharSet, int]:
    char = body[pos]
    if char == "\\":
        return _escape(body, pos, offset, in_class=False), pos + 2
    if char == "[":
        return _char_class(body, pos, offset)
    if char == ".":
        return CharSet(_LINE_TERMINATORS, negated=True), pos + 1
    if char in "()|":
        raise PatternError(
            f"{char!r} at character {pos + offset}: groups and alternation are not in the "
            "supported subset (use an enum for alternatives)"
        )
    if char in _SPECIAL:
        raise PatternError(
            f"{char!r} at character {pos + offset} has nothing to apply to "
            f"(write \\{char} for the character itself)"
        )
    return CharSet(((ord(char), ord(char)),)), pos + 1


def _escape(body: str, pos: int, offset: int, *, in_class: bool) -> CharSet:
    if pos + 1 >= len(body):
        raise PatternError(f"'\\' at character {pos + offset} ends the pattern")
    letter = body[pos + 1]
    if letter in _CLASS_ESCAPES:
        return CharSet(_CLASS_ESCAPES[letter])
    if letter.lower() in _CLASS_ESCAPES and not in_class:
        return CharSet(_CLASS_ESCAPES[letter.lower()], negated=True)
    if letter.isascii() and not letter.isalnum() and letter.isprintable():
        return CharSet(((ord(letter), ord(letter)),))
    raise PatternError(
        f"escape \\{letter} at character {pos + offset} is not in the supported subset"
    )


def _char_class(body: str, pos: int, offset: int) -> tuple[CharSet, int]:
    start = pos
    pos += 1
    negated = pos < len(body) and body[pos] == "^"
    if negated:
        pos += 1
    ranges: list[tuple[int, int]] = []
    first = True
    while True:
        if pos >= len(body):
            raise PatternError(f"'[' at character {start + offset} is never closed")
        char = body[pos]
        if char == "]" and not first:
            return CharSet(tuple(ranges), negated), pos + 1
        first = False
        if char == "\\":
            escaped = _escape(body, pos, offset, in_class=True)
            pos += 2
            if len(escaped.ranges) > 1 or escaped.ranges[0][0] != escaped.ranges[0][1]:
                ranges.extend(escaped.ranges)
                continue
            low = escaped.ranges[0][0]
        elif char == "[":
            raise PatternError(f"'[' at character {pos + offset} inside a class: write \\[")
        else:
            low = ord(char)
            pos += 1
        high = low
        if pos + 1 < len(body) and body[pos] == "-" and body[pos + 1] != "]":
            end = body[pos + 1]
            if end == "\\":
                escaped = _escape(body, pos + 1, offset, in_class=True)
                if escaped.ranges[0][0] != escaped.ranges[0][1] or len(escaped.ranges) > 1:
                    raise PatternError(f"range at character {pos + offset} ends in a class escape")
                high = escaped.ranges[0][0]
                pos += 3
            else:
                high = ord(end)
                pos += 2
            if high < low:
                raise PatternError(
                    f"range at character {pos - 2 + offset} goes backwards "
                    f"({chr(low)!r} after {chr(high)!r})"
                )
        ranges.append((low, high))


def _quantifier(body: str, pos: int, offset: int) -> tuple[int, int, int]:
    if pos >= len(body):
        return 1, 1, pos
    char = body[pos]
    if char == "?":
        found: tuple[int, int, int] = (0, 1, pos + 1)
    elif char == "*":
        found = (0, _UNBOUNDED, pos + 1)
    elif char == "+":
        found = (1, _UNBOUNDED, pos + 1)
    elif char == "{":
        found = _counted(body, pos, offset)
    else:
        return 1, 1, pos
    after = found[2]
    if after < len(body) and body[after] in "?*+{":
        raise PatternError(
            f"{body[after]!r} at character {after + offset} follows a quantifier "
            "(lazy and nested quantifiers are not in the supported subset)"
        )
    return found


def _counted(body: str, pos: int, offset: int) -> tuple[int, int, int]:
    close = body.find("}", pos)
    inside = body[pos + 1 : close] if close > 0 else ""
    low_text, comma, high_text = inside.partition(",")
    if (
        close < 0
        or not low_text.isdecimal()
        or not low_text.isascii()
        or (high_text and not (high_text.isdecimal() and high_text.isascii()))
    ):
        raise PatternError(
            f"'{{' at character {pos + offset} is not a count {{m}}, {{m,}} or {{m,n}}"
        )
    low = int(low_text)
    high = (int(high_text) if high_text else _UNBOUNDED) if comma else low
    if max(low, high) > MAX_TEMPLATE_PATTERN_REPEAT:
        raise PatternError(
            f"count at character {pos + offset} is above {MAX_TEMPLATE_PATTERN_REPEAT}"
        )
    if high != _UNBOUNDED and high < low:
        raise PatternError(f"count at character {pos + offset} has its maximum below its minimum")
    return low, high, close + 1
