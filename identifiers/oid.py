"""ISO/ITU-T object identifiers in dotted decimal form, e.g. `1.2.840.113549` (DESIGN §2).

Rules (ITU-T X.660 / ISO/IEC 9834-1, and X.690 for the encoding they allow):
- arcs are non-negative decimal integers without leading zeros, separated by single dots;
- the first arc is 0 (itu-t), 1 (iso) or 2 (joint-iso-itu-t);
- under 0 and 1 the second arc is at most 39, because BER/DER pack the first two arcs into
  one number (40 * first + second); under 2 it is unbounded;
- at least two arcs: a lone root arc names a whole branch of the tree, not an object that
  anything registers under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_OID_CHARS

ROOT_ARCS: Final = {0: "itu-t", 1: "iso", 2: "joint-iso-itu-t"}
MAX_SECOND_ARC_UNDER_0_AND_1: Final = 39
_DIGITS: Final = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Oid:
    text: str
    arcs: tuple[int, ...]

    @property
    def root(self) -> str:
        return ROOT_ARCS[self.arcs[0]]

    def __str__(self) -> str:
        return self.text


def _fail(message: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_OID, message)


def parse_oid(text: str) -> Oid:
    if not isinstance(text, str):
        raise _fail(f"OID must be text, got {type(text).__name__}")
    if not text:
        raise _fail("OID is empty")
    if len(text) > MAX_OID_CHARS:
        raise _fail(f"OID is {len(text)} characters, at most {MAX_OID_CHARS} allowed")
    arcs: list[int] = []
    pos = 0
    for number, arc in enumerate(text.split("."), start=1):
        if not arc:
            raise _fail(f"arc {number} is empty (at character {pos})")
        for offset, ch in enumerate(arc):
            if ch not in _DIGITS:
                raise _fail(
                    f"{ch!r} (U+{ord(ch):04X}) at character {pos + offset}: "
                    "arcs are decimal digits separated by '.'"
                )
        if len(arc) > 1 and arc[0] == "0":
            raise _fail(f"arc {number} ({arc!r}, at character {pos}) has a leading zero")
        arcs.append(int(arc))
        pos += len(arc) + 1
    if arcs[0] not in ROOT_ARCS:
        raise _fail(f"first arc must be 0, 1 or 2, got {arcs[0]}")
    if len(arcs) < 2:
        raise _fail(f"OID {text!r} has one arc; at least two are needed")
    if arcs[0] in (0, 1) and arcs[1] > MAX_SECOND_ARC_UNDER_0_AND_1:
        raise _fail(
            f"second arc must be at most {MAX_SECOND_ARC_UNDER_0_AND_1} under "
            f"{arcs[0]} ({ROOT_ARCS[arcs[0]]}), got {arcs[1]}"
        )
    return Oid(text, tuple(arcs))


def is_valid_oid(text: str) -> bool:
    try:
        parse_oid(text)
    except SparkError:
        return False
    return True
