"""Which crypto checks the explorer's proofs, where (issue 12): a page opened over plain HTTP
at a LAN address is not a secure context, so the browser gives it no WebCrypto, and the
bundled noble libraries check; the same page over HTTPS (`[http] tls_cert`/`tls_key`) is a
secure context, and WebCrypto checks. Each test starts a single-validator node whose gateway
listens on 0.0.0.0 and opens it through this machine's non-loopback IPv4 address in Debian's
chromium, pins the genesis, and sees an unregistered identifier verified absent (SHA-256,
the validators' Ed25519 signatures and the state proof all checked). Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sparkchain.node import keystore, launcher
from sparkchain.node.config import write_config
from sparkchain.node.explorer_vendor import DEPS_DIR, locked_packages
from sparkchain.node.home import NodeHome, free_loopback_ports, init_home
from sparkchain.node.tls import new_authority
from tests.helpers.tls import api_certificate

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (`make test` installs it)",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.timeout(180)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
START_TIMEOUT_S = 60.0
ABSENT = "88.608/Never-Registered"
SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def lan_ipv4() -> str | None:
    """This machine's first IPv4 address that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue  # an interface without an IPv4 address
            address = ipaddress.IPv4Address(packed[20:24])
            if not address.is_loopback and not address.is_unspecified:
                return str(address)
    return None


@pytest.fixture
def lan() -> str:
    found = lan_ipv4()
    if found is None:
        pytest.skip("this machine has no non-loopback IPv4 address to open the page through")
    return found


def start_node(root: Path, tls: bool) -> tuple[NodeHome, int]:
    (port,) = free_loopback_ports(1)
    home = init_home(root / "home", http_listen=f"0.0.0.0:{port}").home
    if tls:
        chain, key = api_certificate(new_authority("explorer test CA"))
        (home.keys_dir / "http-cert.pem").write_bytes(chain)
        keystore.write_private_file(home.keys_dir / "http-key.pem", key)
        config = home.config()
        http = dataclasses.replace(
            config.http, tls_cert="keys/http-cert.pem", tls_key="keys/http-key.pem"
        )
        write_config(home.config_path, dataclasses.replace(config, http=http))
    launcher.start_node(home, timeout_s=START_TIMEOUT_S)
    return home, port


@pytest.fixture
def browse() -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        # the test's certificate names localhost and 127.0.0.1, not the LAN address
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def verify_absent(page: Page, url: str) -> list[str]:
    """Open the identifier view at `url`, pin the offered genesis, wait for the verdict;
    returns every URL the page requested."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    page.get_by_role("button", name="Pin this genesis").click()
    expect(page.locator("#proof")).to_contain_text("✓ Verified absent at height")
    expect(page.locator("#proof")).to_contain_text("by 1 of 1 validators")
    return requested


def test_over_plain_http_at_a_lan_address_the_bundled_noble_checks(
    tmp_path: Path, lan: str, browse: Page
) -> None:
    home, port = start_node(tmp_path, tls=False)
    try:
        origin = f"http://{lan}:{port}"
        requested = verify_absent(browse, f"{origin}/#/id/{ABSENT}")
        assert browse.evaluate("window.isSecureContext") is False
        assert browse.evaluate("globalThis.crypto.subtle === undefined")
        version = locked_packages((DEPS_DIR / "package-lock.json").read_text())["@noble/ed25519"][0]
        expect(browse.locator("#proof")).to_contain_text(
            f"checked in this browser with the bundled noble-ed25519 {version} and noble-hashes"
        )
        expect(browse.locator("#proof")).to_contain_text("(no WebCrypto on this page)")
        browse.screenshot(path=str(ARTIFACTS / "identifier-verified-noble-lan.png"), full_page=True)
        assert f"{origin}/explorer/vendor/noble-ed25519/index.js" in requested
        assert {urlsplit(url).netloc for url in requested} == {f"{lan}:{port}"}
    finally:
        launcher.stop_node(home)


def test_over_https_webcrypto_checks(tmp_path: Path, browse: Page) -> None:
    # at the LAN address where there is one: HTTPS, not the address, makes it secure
    lan = lan_ipv4() or "127.0.0.1"
    home, port = start_node(tmp_path, tls=True)
    try:
        origin = f"https://{lan}:{port}"
        requested = verify_absent(browse, f"{origin}/#/id/{ABSENT}")
        assert browse.evaluate("window.isSecureContext") is True
        expect(browse.locator("#proof")).to_contain_text("checked in this browser with WebCrypto")
        browse.screenshot(path=str(ARTIFACTS / "identifier-verified-https.png"), full_page=True)
        assert not [url for url in requested if "/vendor/" in url], "noble loaded needlessly"
        assert {urlsplit(url).netloc for url in requested} == {f"{lan}:{port}"}
    finally:
        launcher.stop_node(home)
