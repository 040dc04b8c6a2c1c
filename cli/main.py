"""`spark`: the command-line client. Each command group lives in its own module with a
`register(subparsers)` function; commands return an exit code or raise SparkError."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from sparkchain.cli import (
    id_cmd,
    import_cmd,
    init_cmd,
    keys_cmd,
    ledger_cmd,
    node_cmd,
    read_cmds,
    template_cmd,
    testnet_cmd,
    validators_cmd,
    verify_cmd,
    write_cmds,
)
from sparkchain.cli.output import fail
from sparkchain.identifiers.errors import SparkError

COMMAND_GROUPS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (  # type: ignore[type-arg]
    keys_cmd.register,
    id_cmd.register,
    init_cmd.register,
    node_cmd.register,
    testnet_cmd.register,
    ledger_cmd.register,
    write_cmds.register,
    template_cmd.register,
    read_cmds.register,
    verify_cmd.register,
    import_cmd.register,
    validators_cmd.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spark",
        description="sparkchain: register and resolve industrial identifiers on a BFT ledger",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for register in COMMAND_GROUPS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except SparkError as error:
        return fail(error)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `spark list 88 | head`: the reader went away; that is not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
