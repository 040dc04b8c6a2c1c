"""How the CLI speaks: JSON or text on stdout, one-line errors on stderr, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from typing import Any, TextIO

from sparkchain.identifiers.errors import ErrorCode, SparkError

EXIT_OK = 0
EXIT_ERROR = 1  # the request was understood and refused (rule violation, not found, ...)
EXIT_USAGE = 2  # bad command line (argparse uses 2 as well)
EXIT_UNAVAILABLE = 3  # the node could not be reached

_EXIT_BY_CODE = {
    ErrorCode.INVALID_ARGUMENT: EXIT_USAGE,
    ErrorCode.UNAVAILABLE: EXIT_UNAVAILABLE,
}


def exit_code_for(error: SparkError) -> int:
    return _EXIT_BY_CODE.get(error.code, EXIT_ERROR)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, sort_keys=False)
    sys.stdout.write("\n")


# Shown as escapes in text output: controls (a newline in a value would print a forged row),
# format characters (a bidi override reorders what follows), line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` safe for a terminal line: control and format characters as escapes (U+000A as
    `\\n`, U+202E as `\\u202e`), everything else as it is. --json output needs none of this:
    JSON escapes control characters itself."""
    if text.isprintable():
        return text
    return "".join(
        _escape(ch) if unicodedata.category(ch) in _ESCAPED_CATEGORIES else ch for ch in text
    )


def _escape(ch: str) -> str:
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def emit_text(line: str = "", *, file: TextIO | None = None) -> None:
    """Print one line of text output (data from a node or a file may hold anything)."""
    print(printable(line), file=file)


def note(message: str) -> None:
    """A one-line remark on stderr, beside the command's output."""
    emit_text(f"note: {message}", file=sys.stderr)


def fail(error: SparkError) -> int:
    message = " ".join(str(error).split())  # always one line
    emit_text(f"error: {message}", file=sys.stderr)
    return exit_code_for(error)
