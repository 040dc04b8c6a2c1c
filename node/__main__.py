"""`python -m sparkchain.node --home DIR [--log-level L]`: run one node in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.config import LOG_LEVELS
from sparkchain.node.home import NodeHome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkchain.node", description="run a sparkchain node"
    )
    parser.add_argument("--home", type=Path, required=True, help="the node's home directory")
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, help="overrides [node].log_level of config.toml"
    )
    parser.add_argument(
        "--state-sync",
        action="store_true",
        help="a new node: restore a peer's state snapshot, then block-sync the rest",
    )
    args = parser.parse_args(argv)
    try:
        return run_home(NodeHome(args.home), args.log_level, state_sync=args.state_sync)
    except SparkError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1


def run_home(home: NodeHome, log_level: str | None, *, state_sync: bool = False) -> int:
    """Check the home, then hand it to the runtime (shared with `spark node start`)."""
    if not home.exists():
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"{home.root} is not a node home (no config.toml); create one with "
            f"spark init --home {home.root}",
        )
    config = home.config()
    from sparkchain.node import runtime  # imported late: `--help` and set-up errors stay fast

    return runtime.run(home.root, log_level or config.node.log_level, state_sync=state_sync or None)


if __name__ == "__main__":
    sys.exit(main())
