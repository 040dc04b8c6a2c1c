"""`spark node start [--home DIR] [--log-level L] [--state-sync]`: run a node in the foreground.
`spark node resync [--home DIR]`: set a stopped node's damaged ledger aside to re-sync it.
`spark node rotate-key --home DIR --tls-ca CA --tls-ca-key KEY | --activate`: a validator's
new key and peer certificate, prepared, then put in place once the chain rotated to it.

Without --home it runs the development chain in $SPARK_HOME/dev, created on first use: one
validator on the CLI's default address, root prefix 88 owned by the dev key that the CLI
signs with by default, so `spark register 88/...` works at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparkchain.cli.output import emit_json
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node import keystore
from sparkchain.node.config import LOG_LEVELS
from sparkchain.node.home import (
    DEV_ROOT_PREFIX,
    NodeHome,
    dev_home_dir,
    init_dev_home,
    read_option_file,
)


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
    start.add_argument(
        "--state-sync",
        action="store_true",
        help=(
            "a new node (empty ledger): restore the newest state snapshot its peers offer, "
            "checked against the genesis, then block-sync the rest (as [snapshots] "
            "state_sync = true); a node that already holds a chain ignores it"
        ),
    )
    start.set_defaults(handler=_start)

    resync = sub.add_parser(
        "resync",
        help="move a stopped node's damaged ledger aside so that it syncs again from peers",
        description=(
            "For a node that refuses to start with STORAGE_CORRUPT: move data/ledger to "
            "data/ledger.damaged-<UTC time> (nothing is deleted) and the acknowledged height "
            "beside it, so that the next start creates a fresh ledger from genesis.json and "
            "fetches every block from its peers. data/last_signed is kept. Refused while "
            "the node runs."
        ),
    )
    resync.add_argument("--home", type=Path, help="node home (default: $SPARK_HOME/dev)")
    resync.set_defaults(handler=_resync)

    rotate = sub.add_parser(
        "rotate-key",
        help="prepare a validator's new key and certificate; --activate puts them in place",
        description=(
            "Step 1 (the node may run): write keys/validator.next.pem and the peer "
            "certificate and TLS key for it (.next beside the configured ones), issued by the "
            "network CA; prints the --rotate argument for `spark validators propose`. "
            "Step 2, after the validators' change committed and with the node stopped: "
            "--activate moves the current files aside (*.retired-<key prefix>) and the .next "
            "files into place; the next start carries the old key's last-signed record over."
        ),
    )
    rotate.add_argument("--home", type=Path, required=True, help="the validator's node home")
    rotate.add_argument("--tls-ca", type=Path, help="the network's peer CA certificate (PEM)")
    rotate.add_argument("--tls-ca-key", type=Path, help="the network's peer CA key (PEM)")
    rotate.add_argument(
        "--activate", action="store_true", help="put the prepared key and certificate in place"
    )
    rotate.add_argument("--json", action="store_true", help="print JSON")
    rotate.set_defaults(handler=_rotate_key)


def _start(args: argparse.Namespace) -> int:
    home = NodeHome(args.home) if args.home is not None else _dev_home()
    from sparkchain.node.__main__ import run_home  # pulls in the whole runtime; only when starting

    return run_home(home, args.log_level, state_sync=args.state_sync)


def _resync(args: argparse.Namespace) -> int:
    from sparkchain.node.resync import resync

    home = NodeHome(args.home if args.home is not None else dev_home_dir(keystore.spark_home()))
    done = resync(home)
    if done.ledger_moved_to is not None:
        print(f"moved the ledger {home.ledger_dir} to {done.ledger_moved_to}")
    if done.acknowledged_moved_to is not None:
        print(
            f"moved the acknowledged height ({done.acknowledged_height}) to "
            f"{done.acknowledged_moved_to}"
        )
    print(f"kept {home.last_signed_path.name} (what this validator signed last)")
    print("next: start the node; it creates a fresh ledger from genesis.json and fetches")
    print("every block from its peers (`synced` in its log; `spark status` shows its height)")
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from sparkchain.node.rotate_key import activate_rotation, prepare_rotation

    home = NodeHome(args.home)
    if args.activate:
        if args.tls_ca is not None or args.tls_ca_key is not None:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT, "--activate takes no --tls-ca/--tls-ca-key"
            )
        done = activate_rotation(home)
        summary = {
            "validator": done.name,
            "public_key": done.new_public_key.hex(),
            "retired": [str(path) for path in done.retired.paths()],
        }
        if args.json:
            emit_json(summary)
            return 0
        print(f"{done.name} now signs with {summary['public_key']}")
        print(f"the old key and certificate: {', '.join(summary['retired'])}")
        print(f"start it with: spark node start --home {home.root}")
        return 0
    if args.tls_ca is None or args.tls_ca_key is None:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            "give --tls-ca and --tls-ca-key (the network CA) to prepare, or --activate",
        )
    prepared = prepare_rotation(
        home,
        read_option_file(args.tls_ca, "--tls-ca"),
        read_option_file(args.tls_ca_key, "--tls-ca-key"),
    )
    rotate_with = f"{prepared.name}={prepared.new_public_key.hex()}"
    summary = {
        "validator": prepared.name,
        "old_public_key": prepared.old_public_key.hex(),
        "public_key": prepared.new_public_key.hex(),
        "rotate_with": rotate_with,
        "files": [str(path) for path in prepared.files.paths()],
    }
    if args.json:
        emit_json(summary)
        return 0
    print(f"prepared a new key for {prepared.name}: {summary['public_key']}")
    print(f"have the validators approve: spark validators propose --rotate {rotate_with}")
    print("once `spark validators list` shows the new key: stop the node, then run")
    print(f"  spark node rotate-key --home {home.root} --activate")
    return 0


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
