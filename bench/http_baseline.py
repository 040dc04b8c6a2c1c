"""A bare aiohttp server whose one handler returns a constant JSON body of about 300 bytes,
shaped like a Handle REST answer: the baseline for what one Python aiohttp process can answer
on this machine (the gateway runs on aiohttp in one event loop too).

    python -m bench.http_baseline PORT   # serves 127.0.0.1:PORT until SIGTERM
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from aiohttp import web

BODY = json.dumps(
    {
        "responseCode": 1,
        "handle": "88.608/BASELINE-000001",
        "values": [
            {
                "index": 1,
                "type": "URL",
                "data": {"format": "string", "value": "https://example.com/p/000001"},
                "ttl": 86400,
                "timestamp": "2026-12-06T00:00:00Z",
            },
            {
                "index": 2,
                "type": "EMAIL",
                "data": {"format": "string", "value": "ops@example.com"},
                "ttl": 86400,
                "timestamp": "2026-12-06T00:00:00Z",
            },
        ],
    }
).encode()


async def _constant(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _constant)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
    sys.exit(0)
