"""The gateway's cache of encoded resolve answers (node/answer_cache.py): an answer serves
identical requests at its height only, a commit makes every answer fresh, and its bounds
hold. The end-to-end half runs a gateway in this process over a real socket."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

from sparkchain.identifiers.tx import value
from sparkchain.node.answer_cache import AnswerCache
from sparkchain.node.config import HttpConfig
from sparkchain.node.gateway import Gateway
from sparkchain.node.home import free_loopback_ports
from tests.helpers.api_node import FakeStatus
from tests.helpers.ledger import LedgerChain


def test_an_answer_serves_its_height_only() -> None:
    cache: AnswerCache[bytes] = AnswerCache()
    cache.put(5, "88/A", b"five", 4)
    assert cache.get(5, "88/A") == b"five"
    assert cache.get(5, "88/a") is None  # the spelling asked is echoed: another answer
    assert cache.get(6, "88/A") is None  # a commit: everything read again
    cache.put(5, "88/A", b"stale", 5)  # read before the commit, answered after: not kept
    assert cache.get(6, "88/A") is None


def test_the_bounds_hold() -> None:
    cache: AnswerCache[bytes] = AnswerCache(entries=3, max_bytes=10)
    for key in "abc":
        cache.put(1, key, b"x", 1)
    assert len(cache) == 3
    cache.put(1, "d", b"x", 1)  # full: starts again
    assert len(cache) == 1 and cache.get(1, "d") == b"x"
    cache.put(1, "big", b"y" * 11, 11)  # larger than the whole cache: not kept
    assert cache.get(1, "big") is None
    cache.put(1, "e", b"z" * 9, 9)  # 1 + 9 bytes fit; one more does not
    cache.put(1, "f", b"z", 1)
    assert cache.get(1, "d") is None and cache.get(1, "f") == b"z"


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        return answer


def _location(url: str) -> str:
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        urllib.request.build_opener(Stay).open(url, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 307, error.code
        return str(error.headers["Location"])
    raise AssertionError(f"{url} did not redirect")


async def test_a_commit_changes_what_the_gateway_answers(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger")
    acme = chain.signer("acme")
    url_v1 = [value(1, "URL", "https://example.com/v1")]
    gtin_item = "01/09506000134352/21/S1"
    chain.commit(
        [
            acme.register("88/C-1", url_v1, now_ms=chain.next_time_ms),
            acme.register(f"88/{gtin_item}", url_v1, now_ms=chain.next_time_ms),
        ]
    )
    address = f"127.0.0.1:{free_loopback_ports(1)[0]}"
    gateway = Gateway(
        HttpConfig(address),
        tmp_path / "config.toml",
        chain.ledger,
        FakeStatus(),
        True,
        gs1_prefixes=["88"],
    )
    await gateway.start()
    try:
        url = f"http://{address}/api/handles/88/C-1"
        for _ in range(2):  # the second answer comes from the cache
            first = await asyncio.to_thread(_get, url)
            assert first["values"][0]["data"]["value"] == "https://example.com/v1"  # type: ignore[index]
        proven = f"{url}?proof=true&type=URL"
        before = await asyncio.to_thread(_get, proven)
        assert before == await asyncio.to_thread(_get, proven)  # from the cache
        link = f"http://{address}/{gtin_item}"
        for _ in range(2):
            assert await asyncio.to_thread(_location, link) == "https://example.com/v1"
        url_v2 = [value(1, "URL", "https://example.com/v2")]
        chain.commit(
            [
                acme.update("88/C-1", url_v2, now_ms=chain.next_time_ms),
                acme.update(f"88/{gtin_item}", url_v2, now_ms=chain.next_time_ms),
            ]
        )
        after = await asyncio.to_thread(_get, url)
        assert after["values"][0]["data"]["value"] == "https://example.com/v2"  # type: ignore[index]
        assert await asyncio.to_thread(_location, link) == "https://example.com/v2"
        proven_after = await asyncio.to_thread(_get, proven)
        assert proven_after["values"][0]["data"]["value"] == "https://example.com/v2"  # type: ignore[index]
        heights = [answer["proof"]["header"]["view"]["height"] for answer in (before, proven_after)]  # type: ignore[index]
        assert heights[1] == heights[0] + 1
        lower = await asyncio.to_thread(_get, f"http://{address}/api/handles/88/c-1")
        assert lower["handle"] == "88/c-1" and lower["registeredAs"] == "88/C-1"
    finally:
        await gateway.stop()
        chain.close()
