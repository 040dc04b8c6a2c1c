"""`spark init --home DIR`: write a single-validator chain home."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparkchain.cli.output import add_json_argument, emit_json
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.node import keystore
from sparkchain.node.home import DEFAULT_CHAIN_ID, init_home


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    init = commands.add_parser(
        "init",
        help="write a single-validator chain home (config, genesis, validator and root keys)",
    )
    init.add_argument("--home", type=Path, required=True, help="directory to write")
    init.add_argument("--chain-id", default=DEFAULT_CHAIN_ID, help=f"default {DEFAULT_CHAIN_ID}")
    init.add_argument("--name", default="node1", help="the validator's name (default node1)")
    init.add_argument("--api-listen", help="public gRPC address (default 127.0.0.1:7100)")
    init.add_argument("--p2p-listen", help="peer address (default 127.0.0.1:7200)")
    init.add_argument("--http-listen", help="HTTP gateway address (default: a free loopback port)")
    init.add_argument(
        "--force",
        action="store_true",
        help="replace an existing home (deletes its keys and chain data)",
    )
    add_json_argument(init)
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    written = init_home(
        args.home,
        chain_id=args.chain_id,
        name=args.name,
        api_listen=args.api_listen,
        p2p_listen=args.p2p_listen,
        http_listen=args.http_listen,
        force=args.force,
    )
    root_key = keystore.read_key_file(written.home.root_key_path)
    summary = {
        "home": str(written.home.root),
        "chain_id": written.genesis.chain_id,
        "validator": written.config.node.name,
        "validator_public_key": written.node_public_key.hex(),
        "root_authority": bid_from_public_key(root_key.public_key),
        "api": written.config.api.listen,
        "p2p": written.config.p2p.listen,
        "http": written.config.http.listen,
        "files": [str(path) for path in written.files],
    }
    if args.json:
        emit_json(summary)
        return 0
    print(f"wrote chain {summary['chain_id']} in {summary['home']}:")
    for path in written.files:
        print(f"  {path}")
    print(f"validator {summary['validator']}: {summary['validator_public_key']}")
    print(f"root authority (keys/root.pem): {summary['root_authority']}")
    print(f"start it with: spark node start --home {written.home.root}")
    return 0
