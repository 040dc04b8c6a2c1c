"""A stand-in node process for launcher tests: it reads a home's config.toml and answers
Chain.Status on [api].listen, nothing else. Run as a script (the launcher's `command`):

    python tests/helpers/fake_node.py --home DIR [--height H] [--ignore-sigterm]
                                      [--exit-code N] [--never-serve]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from sparkchain.node.config import load_config
from sparkchain.proto import api_pb2, api_pb2_grpc

SCRIPT = Path(__file__).resolve()


def command(home: Path, *flags: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--home", str(home.resolve()), *flags]


class _Chain(api_pb2_grpc.ChainServicer):
    def __init__(self, chain_id: str, role: str, height: int) -> None:
        self.answer = api_pb2.StatusResponse(chain_id=chain_id, role=role, height=height)

    def Status(  # gRPC's method name
        self, request: api_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> api_pb2.StatusResponse:
        return self.answer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--height", type=int, default=7)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--exit-code", type=int)
    parser.add_argument("--never-serve", action="store_true")
    args = parser.parse_args()
    print(f"fake node for {args.home}", flush=True)
    if args.exit_code is not None:
        print("fake node: refusing to start", flush=True)
        return args.exit_code
    stop = threading.Event()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.never_serve:
        while not stop.is_set():
            time.sleep(0.05)
        return 0
    config = load_config(args.home / "config.toml")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_ChainServicer_to_server(
        _Chain("fake-chain", config.node.role, args.height), server
    )
    server.add_insecure_port(config.api.listen)
    server.start()
    while not stop.is_set():
        time.sleep(0.05)
    server.stop(grace=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
