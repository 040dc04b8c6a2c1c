"""`spark node start [--home DIR] [--log-level L]`: run a node in the foreground.

Without --home it runs the development chain in $SPARK_HOME/dev, created on first use: one
validator on the CLI's default address, root prefix 88 owned by the dev key that the CLI
signs with by default, so `spark register 88/...` works at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparkchain.node import keystore
from sparkchain.node.config import LOG_LEVELS
from sparkchain.node.home import DEV_ROOT_PREFIX, NodeHome, dev_home_dir, init_dev_home


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    node = commands.add_parser("node", help="run a node")
    sub = node.add_subparsers(dest="node_command", metavar="ACTION")
    sub.required = True

    start = sub.add_parser(
        "start",
        help="run a node in the foreground (the development chain when no --home is given)",
    )
    start.add_argument(
        "--home", type=Path, help="node home (default: $SPARK_HOME/dev, created on first use)"
    )
    start.add_argument(
        "--log-level", choices=LOG_LEVELS, help="overrides [node].log_level of config.toml"
    )
    start.set_defaults(handler=_start)


def _start(args: argparse.Namespace) -> int:
    home = NodeHome(args.home) if args.home is not None else _dev_home()
    from sparkchain.node.__main__ import run_home  # pulls in the whole runtime; only when starting

    return run_home(home, args.log_level)


def _dev_home() -> NodeHome:
    spark_home = keystore.spark_home()
    home = NodeHome(dev_home_dir(spark_home))
    if home.exists():
        return home
    written = init_dev_home(spark_home)
    dev_key_path = keystore.key_path(keystore.DEV_KEY_NAME, spark_home)
    dev_bid = written.genesis.root_authorities[0]
    print(f"created the development chain {written.genesis.chain_id} in {home.root}")
    print(f"  root prefix {DEV_ROOT_PREFIX} is owned by the dev key {dev_key_path}")
    print(f"  ({dev_bid}), the CLI's default signing key")
    print(f"  public API on {written.config.api.listen}", flush=True)
    return home
