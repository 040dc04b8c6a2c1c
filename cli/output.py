"""How the CLI speaks: JSON or text on stdout, one-line errors on stderr, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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


def fail(error: SparkError) -> int:
    message = " ".join(str(error).split())  # always one line
    print(f"error: {message}", file=sys.stderr)
    return exit_code_for(error)
