"""`spark ledger verify --home DIR`: re-check a stopped node's whole chain offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sparkchain.cli.output import EXIT_ERROR, EXIT_OK, emit_json
from sparkchain.ledger.genesis import GENESIS_FILE_NAME
from sparkchain.node.chain_check import ChainReport, check_chain
from sparkchain.node.home import NodeHome, load_genesis


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ledger = commands.add_parser("ledger", help="offline tools for a node's ledger")
    sub = ledger.add_subparsers(dest="ledger_command", metavar="ACTION")
    sub.required = True

    verify = sub.add_parser(
        "verify",
        help="replay the chain from genesis and report the first inconsistency",
        description=(
            "Re-check every block of a node's ledger: linkage, tx roots, re-executed state "
            "roots and certificates, then the stored state against the replay. The node "
            "must be stopped (LevelDB allows one process at a time). Exit code 0 when the "
            "chain is sound, 1 at the first inconsistency."
        ),
    )
    verify.add_argument("--home", type=Path, required=True, help="the node home directory")
    verify.add_argument(
        "--genesis", type=Path, help=f"genesis file (default: HOME/{GENESIS_FILE_NAME})"
    )
    verify.add_argument("--ledger", type=Path, help="ledger directory (default: in HOME)")
    verify.add_argument(
        "--snapshots",
        type=Path,
        help="where the snapshot a state-synced ledger began from is (default: beside it)",
    )
    verify.add_argument("--scratch", type=Path, help="where to replay (default: a temp dir)")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    home = NodeHome(args.home)
    genesis = load_genesis(args.genesis or home.genesis_path)
    ledger_dir = args.ledger or home.ledger_dir
    console = Console(stderr=True)
    with Progress(
        TextColumn("verifying blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=args.json or not console.is_terminal,
    ) as progress:
        task = progress.add_task("verify", total=None)

        def on_block(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = check_chain(
            ledger_dir, genesis, on_block, args.scratch, snapshots_dir=args.snapshots
        )
    if args.json:
        emit_json(_as_dict(report))
    elif report.ok:
        print(f"ledger verified: {report.height} blocks, every check passed; {_began(report)}")
    else:
        print(_began(report), file=sys.stderr)
        print(
            f"inconsistency at block {report.problem_height} "
            f"({report.checked} of {report.height} blocks verified before it): {report.problem}",
            file=sys.stderr,
        )
    return EXIT_OK if report.ok else EXIT_ERROR


def _as_dict(report: ChainReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "height": report.height,
        "checked": report.checked,
        "began_at": "genesis" if not report.base_height else "snapshot",
        "base_height": report.base_height,
        "problem": report.problem,
        "problem_height": report.problem_height,
    }


def _began(report: ChainReport) -> str:
    """Where the ledger began: what its check started from."""
    if not report.base_height:
        return "the ledger began at the genesis"
    return (
        f"the ledger began from a state snapshot at height {report.base_height} (checked "
        f"against the genesis), and {report.checked} blocks after it were replayed"
    )
