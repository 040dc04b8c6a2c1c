"""`spark init --home DIR`: write a single-validator chain home."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparkchain.cli.output import add_json_argument, emit_json
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashAlgorithm
from sparkchain.node import keystore
from sparkchain.node.home import DEFAULT_CHAIN_ID, init_home, init_joining_home


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
        "--hash",
        choices=[a.value for a in HashAlgorithm],
        help="the chain's hash, fixed at genesis: sha256 (default) or sm3 (GB/T 32905) for tx "
        "ids, blocks and the state tree (with --join: the genesis file's)",
    )
    init.add_argument(
        "--join",
        type=Path,
        metavar="GENESIS",
        help="join the running network of this genesis file as a new validator (it signs "
        "once `spark validators` adds its key) instead of starting a chain",
    )
    init.add_argument(
        "--peers", default="", metavar="HOST:PORT,...", help="with --join: peers to dial"
    )
    init.add_argument(
        "--tls-ca", type=Path, help="with --join: the network's peer CA certificate (PEM)"
    )
    init.add_argument(
        "--tls-ca-key",
        type=Path,
        help="with --join: the CA's key, to issue this node's certificate",
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="replace an existing home (deletes its keys and chain data)",
    )
    add_json_argument(init)
    init.set_defaults(handler=_init)


def _join(args: argparse.Namespace) -> int:
    if args.tls_ca is None or args.tls_ca_key is None:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, "--join needs --tls-ca and --tls-ca-key (the network CA)"
        )
    written = init_joining_home(
        args.home,
        args.join,
        [peer.strip() for peer in args.peers.split(",") if peer.strip()],
        args.tls_ca,
        args.tls_ca_key,
        args.name,
        api_listen=args.api_listen,
        p2p_listen=args.p2p_listen,
        http_listen=args.http_listen,
        force=args.force,
    )
    config = written.config
    key_hex = written.node_public_key.hex()
    summary = {
        "home": str(written.home.root),
        "chain_id": written.genesis.chain_id,
        "validator": config.node.name,
        "validator_public_key": key_hex,
        "api": config.api.listen,
        "p2p": config.p2p.listen,
        "http": config.http.listen,
        "add_with": f"{config.node.name}={key_hex}@{config.p2p.listen}",
        "files": [str(path) for path in written.files],
    }
    if args.json:
        emit_json(summary)
        return 0
    print(f"wrote a joining validator of chain {summary['chain_id']} in {summary['home']}")
    print(f"have the validators add it: spark validators propose --add {summary['add_with']}")
    print(f"start it with: spark node start --home {written.home.root}")
    return 0


def _init(args: argparse.Namespace) -> int:
    if args.join is not None:
        if args.hash is not None:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT,
                "--hash chooses a new chain's hash; with --join the genesis file has it",
            )
        return _join(args)
    if args.peers or args.tls_ca or args.tls_ca_key:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, "--peers, --tls-ca and --tls-ca-key go with --join"
        )
    written = init_home(
        args.home,
        chain_id=args.chain_id,
        name=args.name,
        api_listen=args.api_listen,
        p2p_listen=args.p2p_listen,
        http_listen=args.http_listen,
        force=args.force,
        hash_algorithm=HashAlgorithm(args.hash or HashAlgorithm.SHA256.value),
    )
    root_key = keystore.read_key_file(written.home.root_key_path)
    summary = {
        "home": str(written.home.root),
        "chain_id": written.genesis.chain_id,
        "hash": written.genesis.hash_algorithm.value,
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
