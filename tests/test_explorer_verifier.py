"""The explorer's JavaScript verifier (node/explorer/verify.js) in Debian's chromium, over the
proof-bundle test vectors of tests/vectors/ (docs/proof-bundle.md §7): every valid bundle
verifies with the manifest's height, signers and presence; every tampered one is refused
with the manifest's reason; the genesis hash agrees with Python's.

The files are served from 127.0.0.1 (a secure context, so WebCrypto is there) by a small
static server of this test; no node is needed.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sparkchain.ledger.genesis import parse_genesis

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (`make test` installs it)",
        allow_module_level=True,
    )

from playwright.sync_api import Page, sync_playwright  # noqa: E402

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(REPO)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox"]
            )
            opened = browser.new_page()
            opened.goto(f"http://127.0.0.1:{server.server_address[1]}/tests/vectors/manifest.json")
            yield opened
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def verify_in_browser(page: Page, file: str) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """async (file) => {
            const { verifyBundle } = await import("/node/explorer/verify.js");
            const load = async (name) => (await fetch(`/tests/vectors/${name}`)).json();
            return verifyBundle(await load(file), await load("genesis.json"));
        }""",
        file,
    )
    return result


def test_the_browser_has_webcrypto_ed25519_on_loopback(page: Page) -> None:
    assert page.evaluate("window.isSecureContext") is True
    supported = page.evaluate(
        """async () => { try { await crypto.subtle.generateKey({name: "Ed25519"}, false,
        ["sign"]); return true; } catch { return false; } }"""
    )
    assert supported


def test_the_genesis_hash_agrees_with_python(page: Page) -> None:
    genesis = parse_genesis((VECTORS / "genesis.json").read_bytes())
    computed = page.evaluate(
        """async () => {
            const { genesisHash } = await import("/node/explorer/verify.js");
            return genesisHash(await (await fetch("/tests/vectors/genesis.json")).json());
        }"""
    )
    assert computed == genesis.genesis_hash.hex()


@pytest.mark.parametrize("vector", MANIFEST["vectors"], ids=lambda v: v["file"])
def test_each_vector_verifies_or_is_refused_for_its_reason(
    page: Page, vector: dict[str, Any]
) -> None:
    result = verify_in_browser(page, vector["file"])
    if vector["valid"]:
        assert result["ok"] is True, result
        assert result["present"] == vector["present"]
        assert result["height"] == vector["height"]
        assert result["signers"] == vector["signers"]
        assert result["validators"] == vector["validators"]
    else:
        assert result["ok"] is False
        assert result["reason"] == vector["reason"], (vector["description"], result)
