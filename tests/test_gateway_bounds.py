"""The gateway's connection cap, on a gateway in this process over a real socket: a request
on a connection beyond `[http] max_connections` is answered 503 and its connection closed,
and the connections within the cap keep being served; the refusal counts as a limit hit."""

from __future__ import annotations

import asyncio
import http.client
from pathlib import Path

from sparkchain.node.config import HttpConfig
from sparkchain.node.gateway import Gateway
from sparkchain.node.home import free_loopback_ports
from sparkchain.node.metrics import NodeMetrics
from tests.helpers.api_node import FakeStatus
from tests.helpers.ledger import LedgerChain


def status_of(connection: http.client.HTTPConnection) -> tuple[int, str | None]:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("Connection")


async def test_a_request_beyond_the_connection_cap_is_503_and_closed(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    address = f"127.0.0.1:{free_loopback_ports(1)[0]}"
    metrics = NodeMetrics()
    gateway = Gateway(
        HttpConfig(address, max_connections=1),
        tmp_path / "config.toml",
        chain.ledger,
        FakeStatus(),
        is_validator=True,
        metrics=metrics,
    )
    await gateway.start()
    host, port = address.split(":")
    first = http.client.HTTPConnection(host, int(port), timeout=5)
    second = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        assert (await asyncio.to_thread(status_of, first))[0] == 200
        assert await asyncio.to_thread(status_of, second) == (503, "close")
        assert (await asyncio.to_thread(status_of, first))[0] == 200  # still served
        hits = metrics.registry.get_sample_value(
            "spark_limit_hits_total", {"limit": "http.max_connections"}
        )
        assert hits == 1
    finally:
        first.close()
        second.close()
        await gateway.stop()
        chain.close()
