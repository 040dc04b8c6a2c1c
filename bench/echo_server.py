"""A bare grpc.aio server whose one method returns the request bytes: the baseline for what
one Python gRPC server process can answer on this machine.

    python -m bench.echo_server   # prints the port, serves until SIGTERM
"""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc

ECHO_METHOD = "/bench.Echo/Echo"


def _echo_handler() -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        return request

    method = grpc.unary_unary_rpc_method_handler(echo)
    return grpc.method_handlers_generic_handler("bench.Echo", {"Echo": method})


async def serve() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_echo_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(grace=None)


if __name__ == "__main__":
    asyncio.run(serve())
    sys.exit(0)
