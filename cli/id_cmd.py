"""`spark id bid|check` (filled in by the identifiers work)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ident = commands.add_parser("id", help="inspect identifiers and BIDs")
    sub = ident.add_subparsers(dest="id_command", metavar="ACTION")
    sub.required = True
