"""`spark testnet init|start|stop|status`: a local network of node processes on loopback."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparkchain.cli.output import add_json_argument, emit_json
from sparkchain.identifiers import limits
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashAlgorithm
from sparkchain.node import launcher
from sparkchain.node.config import LOG_LEVELS
from sparkchain.node.home import TESTNET_CHAIN_ID, NodeHome, find_testnet_homes, init_testnet


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    testnet = commands.add_parser("testnet", help="write and run a local network of nodes")
    sub = testnet.add_subparsers(dest="testnet_command", metavar="ACTION")
    sub.required = True

    init = sub.add_parser("init", help="write one home per node under DIR, with a shared genesis")
    init.add_argument("--dir", type=Path, required=True)
    init.add_argument("--validators", type=int, required=True, metavar="N")
    init.add_argument("--observers", type=int, default=0, metavar="M")
    init.add_argument(
        "--chain-id",
        help=f"default: a new one for each testnet, {TESTNET_CHAIN_ID}-<8 random hex digits>",
    )
    init.add_argument("--base-api-port", type=int, help="consecutive API ports from here")
    init.add_argument("--base-p2p-port", type=int, help="consecutive p2p ports from here")
    init.add_argument(
        "--hash",
        choices=[a.value for a in HashAlgorithm],
        default=HashAlgorithm.SHA256.value,
        help="the chain's hash, fixed at genesis: sha256 (default) or sm3 (GB/T 32905) for tx "
        "ids, blocks and the state tree",
    )
    init.add_argument(
        "--force", action="store_true", help="replace the testnet in DIR (deletes its data)"
    )
    add_json_argument(init)
    init.set_defaults(handler=_init)

    start = sub.add_parser(
        "start", help="start the nodes in the background; returns once they answer"
    )
    start.add_argument("--dir", type=Path, required=True)
    start.add_argument("--node", metavar="NAME", help="only this node")
    start.add_argument(
        "--timeout",
        type=float,
        default=limits.NODE_START_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the nodes to answer (default {limits.NODE_START_TIMEOUT_S:g})",
    )
    start.add_argument("--log-level", choices=LOG_LEVELS)
    start.set_defaults(handler=_start)

    stop = sub.add_parser("stop", help="stop the nodes (SIGTERM, then SIGKILL)")
    stop.add_argument("--dir", type=Path, required=True)
    stop.add_argument("--node", metavar="NAME", help="only this node")
    stop.set_defaults(handler=_stop)

    status = sub.add_parser("status", help="each node's role, pid, address and height")
    status.add_argument("--dir", type=Path, required=True)
    add_json_argument(status)
    status.set_defaults(handler=_status)


def _init(args: argparse.Namespace) -> int:
    written = init_testnet(
        args.dir,
        args.validators,
        args.observers,
        chain_id=args.chain_id,
        base_api_port=args.base_api_port,
        base_p2p_port=args.base_p2p_port,
        force=args.force,
        hash_algorithm=HashAlgorithm(args.hash),
    )
    nodes = [
        {
            "name": node.config.node.name,
            "role": node.config.node.role,
            "home": str(node.home.root),
            "api": node.config.api.listen,
            "p2p": node.config.p2p.listen,
            "http": node.config.http.listen,
            "public_key": node.node_public_key.hex(),
        }
        for node in written.nodes
    ]
    if args.json:
        emit_json(
            {
                "dir": str(written.root),
                "chain_id": written.genesis.chain_id,
                "hash": written.genesis.hash_algorithm.value,
                "root_key": str(written.root_key_path),
                "root_authority": written.root_authority,
                "nodes": nodes,
            }
        )
        return 0
    print(f"wrote testnet {written.genesis.chain_id} in {written.root}:")
    for node in nodes:
        print(f"  {node['name']:<12} {node['role']:<9} api {node['api']:<21} p2p {node['p2p']}")
    print(f"root authority {written.root_authority} (key {written.root_key_path})")
    print(f"start it with: spark testnet start --dir {written.root}")
    return 0


def _selected(directory: Path, name: str | None) -> list[NodeHome]:
    homes = find_testnet_homes(directory)
    if name is None:
        return homes
    chosen = [home for home in homes if home.root.name == name]
    if not chosen:
        names = ", ".join(home.root.name for home in homes)
        raise SparkError(ErrorCode.NOT_FOUND, f"no node {name!r} in {directory} (nodes: {names})")
    return chosen


def _start(args: argparse.Namespace) -> int:
    homes = _selected(args.dir, args.node)
    answers = launcher.start_nodes(homes, timeout_s=args.timeout, log_level=args.log_level)
    for home in homes:
        answer = answers[home.root]
        pid = launcher.running_pid(home)
        print(f"{home.root.name}: up (pid {pid}, height {answer.height})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    homes = _selected(args.dir, args.node)
    stopped = set(launcher.stop_nodes(homes))
    for home in homes:
        print(f"{home.root.name}: {'stopped' if home.root in stopped else 'was not running'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    statuses = [launcher.node_status(home) for home in find_testnet_homes(args.dir)]
    if args.json:
        emit_json(
            [
                {
                    "name": s.name,
                    "role": s.role,
                    "pid": s.pid,
                    "address": s.api,
                    "http": s.http,
                    "height": s.height,
                    "state": s.state,
                }
                for s in statuses
            ]
        )
        return 0
    print(f"{'NAME':<12} {'ROLE':<9} {'PID':>7}  {'ADDRESS':<21} HEIGHT")
    for s in statuses:
        pid = str(s.pid) if s.pid is not None else "-"
        height = str(s.height) if s.height is not None else s.state
        print(f"{s.name:<12} {s.role:<9} {pid:>7}  {s.api:<21} {height}")
    return 0
