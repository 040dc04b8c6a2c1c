"""The explorer's JavaScript verifier (node/explorer/verify.js) in Debian's chromium, over the
proof-bundle test vectors of tests/vectors/ (docs/proof-bundle.md §7): every valid bundle
verifies with the manifest's height, signers and presence; every tampered one is refused
with the manifest's reason; the genesis hash agrees with Python's.

Each runs twice: with the browser's WebCrypto, and with the bundled noble fallback
(node/explorer/crypto.js forced to it, as where a page has no WebCrypto), which must give
exactly the same answers.

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


PROVIDERS = ["webcrypto", "noble"]


def verify_in_browser(page: Page, file: str, provider: str) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """async ([file, fallback]) => {
            const { verifyBundle } = await import("/node/explorer/verify.js");
            const { cryptoProvider } = await import("/node/explorer/crypto.js");
            const { subtle, name } = await cryptoProvider(fallback);
            const load = async (name) => (await fetch(`/tests/vectors/${name}`)).json();
            const result = await verifyBundle(await load(file), await load("genesis.json"), subtle);
            return { ...result, checkedBy: name };
        }""",
        [file, provider == "noble"],
    )
    assert result.pop("checkedBy") == provider
    return result


def test_the_browser_has_webcrypto_ed25519_on_loopback(page: Page) -> None:
    assert page.evaluate("window.isSecureContext") is True
    supported = page.evaluate(
        """async () => { try { await crypto.subtle.generateKey({name: "Ed25519"}, false,
        ["sign"]); return true; } catch { return false; } }"""
    )
    assert supported


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_genesis_hash_agrees_with_python(page: Page, provider: str) -> None:
    genesis = parse_genesis((VECTORS / "genesis.json").read_bytes())
    computed = page.evaluate(
        """async (fallback) => {
            const { genesisHash } = await import("/node/explorer/verify.js");
            const { cryptoProvider } = await import("/node/explorer/crypto.js");
            const { subtle } = await cryptoProvider(fallback);
            return genesisHash(await (await fetch("/tests/vectors/genesis.json")).json(), subtle);
        }""",
        provider == "noble",
    )
    assert computed == genesis.genesis_hash.hex()


def test_the_fallback_names_the_bundled_versions(page: Page) -> None:
    label = page.evaluate(
        """async () => {
            const { cryptoProvider } = await import("/node/explorer/crypto.js");
            return (await cryptoProvider(true)).label;
        }"""
    )
    lock = json.loads((REPO / "node" / "explorer_deps" / "package-lock.json").read_text())
    ed25519 = lock["packages"]["node_modules/@noble/ed25519"]["version"]
    assert label.startswith(f"the bundled noble-ed25519 {ed25519} and noble-hashes "), label


def test_the_fallback_refuses_a_signature_that_webcrypto_refuses(page: Page) -> None:
    # RFC 8032 §7.1 test 1 (empty message) verifies; one flipped bit of it does not
    answers = page.evaluate(
        """async () => {
            const { cryptoProvider } = await import("/node/explorer/crypto.js");
            const bytes = (hex) => Uint8Array.from(hex.match(/../g), (p) => parseInt(p, 16));
            const key = bytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
            const sig = bytes("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                + "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
            const flipped = sig.slice(); flipped[10] ^= 1;
            const out = [];
            for (const fallback of [false, true]) {
                const { subtle } = await cryptoProvider(fallback);
                const ed25519 = { name: "Ed25519" };
                const k = await subtle.importKey("raw", key, ed25519, false, ["verify"]);
                const empty = new Uint8Array();
                out.push([await subtle.verify({ name: "Ed25519" }, k, sig, empty),
                    await subtle.verify({ name: "Ed25519" }, k, flipped, empty)]);
            }
            return out;
        }"""
    )
    assert answers == [[True, False], [True, False]]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("vector", MANIFEST["vectors"], ids=lambda v: v["file"])
def test_each_vector_verifies_or_is_refused_for_its_reason(
    page: Page, vector: dict[str, Any], provider: str
) -> None:
    result = verify_in_browser(page, vector["file"], provider)
    if vector["valid"]:
        assert result["ok"] is True, result
        assert result["present"] == vector["present"]
        assert result["height"] == vector["height"]
        assert result["signers"] == vector["signers"]
        assert result["validators"] == vector["validators"]
    else:
        assert result["ok"] is False
        assert result["reason"] == vector["reason"], (vector["description"], result)


def test_a_bundle_of_an_sm3_chain_is_refused_never_reported_verified(page: Page) -> None:
    # issue 16: the page hashes with SHA-256 only; a genesis that chose SM3 must not pass
    answer = page.evaluate(
        """async () => {
            const { verifyBundle, genesisHash } = await import("/node/explorer/verify.js");
            const load = async (name) => (await fetch(`/tests/vectors/${name}`)).json();
            const genesis = { ...(await load("genesis.json")), hash: "sm3" };
            const result = await verifyBundle(await load("valid-present.json"), genesis);
            let hashed;
            try { hashed = await genesisHash(genesis); } catch (error) { hashed = error.message; }
            return { ...result, hashed };
        }"""
    )
    assert answer["ok"] is False and answer["reason"] == "UNSUPPORTED_HASH"
    assert "SM3" in answer["detail"] and "spark verify" in answer["detail"]
    assert "SM3" in answer["hashed"]
