"""The explorer page in a real browser (issue 12): Debian's chromium, headless, driven by
Playwright for Python (never a downloaded browser), against a real two-validator testnet.

Each test saves screenshots under test-artifacts/ (git-ignored) to look at afterwards.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkchain.identifiers.tx import TxBuilder, value
from sparkchain.node.mempool import wall_clock_ms as now_ms
from tests.helpers.cluster import get
from tests.helpers.explorer_net import (
    CHILD_PREFIX,
    GS1_PRODUCT,
    GTIN,
    OWNED_BY_ALICE,
    PREFIX,
    PRODUCT,
    REVOKED,
    ExplorerNet,
    start_explorer_net,
)

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (`make test` installs it)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.timeout(180)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerNet]:
    built = start_explorer_net(tmp_path_factory.mktemp("explorer-browser"))
    try:
        yield built
    finally:
        built.cluster.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        # root in a container has no user namespaces for chromium's sandbox
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert not problems, f"errors in the page: {problems}"


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def search(page: Page, text: str) -> None:
    page.get_by_label("Search").fill(text)
    page.get_by_label("Search").press("Enter")


def heading(page: Page) -> str:
    return page.locator("main h1").inner_text()


def test_network_view_shows_node_chain_validators_and_peers(page: Page, net: ExplorerNet) -> None:
    page.goto(net.base + "/")
    expect(page.locator("main h1")).to_have_text("Network")
    expect(page.locator("#node-name")).to_have_text("node2")
    expect(page.locator("#chain-id")).to_have_text(net.cluster.genesis_chain_id())
    validators = page.get_by_role("region", name="Validators")
    for name in ("node1", "node2"):
        row = validators.get_by_role("row").filter(has_text=name)
        expect(row).to_have_count(1)
        assert re.search(r"\b\d+\b", row.inner_text())
    expect(page.get_by_role("region", name="Peers")).to_contain_text("node1")
    expect(page.locator("main")).to_contain_text("ready")
    shot(page, "network.png")


def test_search_goes_to_each_kind_of_object(page: Page, net: ExplorerNet) -> None:
    _, _, tx = get(net.base, f"/api/txs/{net.register_tx_id}")
    page.goto(net.base + "/")
    expect(page.locator("main h1")).to_have_text("Network")
    cases = [
        (PRODUCT.lower(), PRODUCT, "identifier.png"),
        (REVOKED, REVOKED, "identifier-revoked.png"),
        (PREFIX, f"Prefix {PREFIX}", "prefix.png"),
        (net.alice_bid, "Account", "account.png"),
        (str(tx["height"]), f"Block {tx['height']}", "block.png"),
        (tx["block_hash"], f"Block {tx['height']}", "block-by-hash.png"),
        (net.register_tx_id, "Transaction", "tx.png"),
    ]
    for text, title, screenshot in cases:
        search(page, text)
        expect(page).not_to_have_url(re.compile(r"#/search/"))
        expect(page.locator("main h1")).to_contain_text(title)
        shot(page, screenshot)
    # the last view is shareable: its address opens it again
    assert page.url.endswith(f"#/tx/{net.register_tx_id}")
    search(page, f"{PREFIX}/no-such-thing")
    expect(page.locator("main h1")).to_have_text("Nothing found")
    expect(page.get_by_role("alert")).to_contain_text("is not registered")
    shot(page, "search-nothing.png")


def test_identifier_view_shows_values_status_owner_and_history(
    page: Page, net: ExplorerNet
) -> None:
    page.goto(f"{net.base}/#/id/{OWNED_BY_ALICE}")
    expect(page.locator("main h1")).to_contain_text(OWNED_BY_ALICE)
    expect(page.locator("main h1")).to_contain_text("ACTIVE")
    expect(page.locator("main")).to_contain_text(net.alice_bid)
    expect(page.get_by_role("region", name="Values")).to_contain_text("https://example.com/pump")
    history = page.get_by_role("region", name="History")
    expect(history.get_by_role("row")).to_have_count(3)  # header, transfer, register
    expect(history).to_contain_text("transfer")
    page.get_by_role("link", name=net.alice_bid).first.click()
    expect(page.locator("main h1")).to_have_text("Account")
    expect(page.get_by_role("link", name=OWNED_BY_ALICE)).to_be_visible()


def test_prefix_view_shows_children_and_pages_identifiers(page: Page, net: ExplorerNet) -> None:
    page.goto(f"{net.base}/#/prefix/{PREFIX}?limit=4")
    expect(page.locator("main h1")).to_have_text(f"Prefix {PREFIX}")
    expect(page.get_by_role("link", name=CHILD_PREFIX)).to_be_visible()
    expect(page.locator("main")).to_contain_text(net.alice_bid)  # the registrar
    first = page.get_by_role("region", name="Identifiers").inner_text()
    page.get_by_role("link", name="Next identifiers").click()
    expect(page.get_by_role("link", name="First page")).to_be_visible()
    assert page.get_by_role("region", name="Identifiers").inner_text() != first
    shot(page, "prefix-page-2.png")


def test_blocks_view_pages_back_in_time(page: Page, net: ExplorerNet) -> None:
    page.goto(f"{net.base}/#/blocks?limit=5")
    expect(page.locator("main h1")).to_have_text("Blocks")
    expect(page.locator("#live-blocks tr")).to_have_count(5)
    shot(page, "blocks.png")
    older = page.get_by_role("link", name="Older blocks")
    before = int(re.findall(r"before=(\d+)", older.get_attribute("href") or "")[0])
    older.click()
    expect(page.get_by_role("link", name="Newest blocks")).to_be_visible()
    rows = page.locator("main tbody tr")
    expect(rows.first).to_have_attribute("data-height", str(before - 1))
    expect(rows).to_have_count(min(5, before - 1))


def test_a_new_block_appears_without_reload(page: Page, net: ExplorerNet) -> None:
    page.goto(net.base + "/")
    expect(page.locator("#live-state")).to_have_text("● live")
    page.evaluate("window.notReloaded = true")
    cluster = net.cluster
    txs = TxBuilder(cluster.genesis_chain_id(), cluster.root_key(), secrets.SystemRandom())
    tx = txs.register(f"{PREFIX}/Browser-Live", [value(1, "URL", "https://example.com/b")],
                      now_ms=now_ms())  # fmt: skip
    committed = cluster.submit("node2", tx)
    assert committed.committed
    row = page.locator(f'#live-blocks tr[data-height="{committed.height}"]')
    expect(row).to_have_count(1)
    expect(page.locator("#live-blocks tr")).to_have_count(10)  # the list keeps its length
    expect(page.locator("#live-blocks tr")).to_have_count(10)  # the list keeps its length
    expect(page.locator("#head-height")).not_to_have_text(re.compile(rf"^{committed.height - 1}$"))
    assert page.evaluate("window.notReloaded") is True
    shot(page, "live-block.png")


def test_keyboard_reaches_the_skip_link_and_the_search_box(page: Page, net: ExplorerNet) -> None:
    page.goto(net.base + "/")
    expect(page.locator("main h1")).to_have_text("Network")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    page.get_by_label("Search").focus()
    page.keyboard.type(PREFIX)
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_have_text(f"Prefix {PREFIX}")
    # the view's heading takes the focus, so a screen reader reads where it landed
    assert page.evaluate("document.activeElement.tagName") == "H1"


def test_phone_width_has_no_horizontal_overflow(browser: Browser, net: ExplorerNet) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    try:
        phone = context.new_page()
        _, _, tx = get(net.base, f"/api/txs/{net.register_tx_id}")
        views = {
            "phone-network.png": ("/", "Network"),
            "phone-identifier.png": (f"/#/id/{PRODUCT}", PRODUCT),
            "phone-block.png": (f"/#/block/{tx['height']}", "Block"),
            "phone-tx.png": (f"/#/tx/{net.register_tx_id}", "Transaction"),
            "phone-account.png": (f"/#/account/{net.root_bid}", "Account"),
        }
        for name, (path, title) in views.items():
            phone.goto(net.base + path)
            expect(phone.locator("main h1")).to_contain_text(title)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width} px wide on a phone"
            expect(phone.locator("#node-name")).to_be_visible()
            expect(phone.locator("#chain-id")).to_be_visible()
            shot(phone, name)
    finally:
        context.close()


# ---- verification in the browser ----


def pin_offered_genesis(page: Page, net: ExplorerNet) -> None:
    """The first visit offers this node's genesis hash; the visitor compares and pins it."""
    _, _, status = get(net.base, "/api/status")
    expect(page.locator("#offered-genesis-hash")).to_have_text(status["genesis_hash"])
    page.get_by_role("button", name="Pin this genesis").click()


def test_a_record_is_verified_in_the_browser_once_the_genesis_is_pinned(
    page: Page, net: ExplorerNet
) -> None:
    page.goto(f"{net.base}/#/id/{PRODUCT}")
    shot(page, "identifier-pin-genesis.png")
    pin_offered_genesis(page, net)
    proof = page.locator("#proof")
    expect(proof).to_contain_text(re.compile(r"✓ Verified at height \d+ by 2 of 2 validators"))
    expect(proof).to_contain_text("WebCrypto")
    shot(page, "identifier-verified.png")
    # pinned once, every later record is checked at once
    page.goto(f"{net.base}/#/id/{REVOKED}")
    expect(page.locator("#proof")).to_contain_text("✓ Verified at height")
    expect(page.locator("main h1")).to_contain_text("REVOKED")
    # the network view shows what is pinned, and forgets it on request
    page.goto(f"{net.base}/#/")
    expect(page.locator("#pinned-genesis")).to_contain_text("this node's")
    page.get_by_role("button", name="Forget").click()
    expect(page.locator("#pinned-genesis")).to_contain_text("none yet")
    page.goto(f"{net.base}/#/id/{PRODUCT}")
    expect(page.get_by_role("button", name="Pin this genesis")).to_be_visible()


def test_a_tampered_proof_is_refused_saying_what_failed(page: Page, net: ExplorerNet) -> None:
    page.goto(f"{net.base}/#/id/{PRODUCT}")
    pin_offered_genesis(page, net)
    expect(page.locator("#proof")).to_contain_text("✓ Verified")

    def rewrite_url(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        body["proof"]["record"]["view"]["values"][0]["data"]["value"] = "https://evil.example/x"
        route.fulfill(response=answer, json=body)

    page.route("**/api/handles/**", rewrite_url)  # a node (or a proxy) that lies
    page.reload()
    proof = page.locator("#proof")
    expect(proof).to_contain_text("✗ Not verified: VIEW_MISMATCH")
    expect(page.get_by_role("region", name="Values")).to_contain_text("https://evil.example/x")
    shot(page, "identifier-tampered.png")


def test_an_absent_identifier_is_verified_absent(page: Page, net: ExplorerNet) -> None:
    page.goto(net.base + "/")
    search(page, f"{PREFIX}/Never-Registered")
    expect(page.locator("main h1")).to_have_text("Nothing found")
    page.get_by_role("link", name=re.compile("is not registered")).click()
    pin_offered_genesis(page, net)
    expect(page.locator("#proof")).to_contain_text(
        re.compile(r"✓ Verified absent at height \d+ by 2 of 2 validators")
    )
    shot(page, "identifier-absent.png")


def test_a_genesis_file_can_be_loaded_instead(page: Page, net: ExplorerNet) -> None:
    page.goto(f"{net.base}/#/id/{OWNED_BY_ALICE}")
    page.get_by_label("Or load a genesis file").set_input_files(net.cluster.genesis_file)
    expect(page.locator("#proof")).to_contain_text("✓ Verified at height")


def test_a_registered_product_is_found_by_its_digital_link_and_verified(
    page: Page, net: ExplorerNet
) -> None:
    page.goto(net.base + "/")
    search(page, f"https://id.example.com/01/{GTIN}/21/SN-1")
    expect(page.locator("main h1")).to_contain_text(GS1_PRODUCT)
    pin_offered_genesis(page, net)
    expect(page.locator("#proof")).to_contain_text("✓ Verified at height")
    shot(page, "digital-link-verified.png")


def test_without_webcrypto_the_bundled_noble_checks_and_says_so(
    browser: Browser, net: ExplorerNet
) -> None:
    # what a page opened over plain HTTP at a LAN address gets: no crypto.subtle (the real
    # thing, at a LAN address, is tests/test_explorer_contexts.py)
    context = browser.new_context()
    try:
        context.add_init_script("Object.defineProperty(crypto, 'subtle', {value: undefined})")
        insecure = context.new_page()
        insecure.goto(f"{net.base}/#/id/{PRODUCT}")
        expect(insecure.locator("main h1")).to_contain_text(PRODUCT)
        pin_offered_genesis(insecure, net)
        proof = insecure.locator("#proof")
        expect(proof).to_contain_text(re.compile(r"✓ Verified at height \d+ by 2 of 2 validators"))
        expect(proof).to_contain_text("with the bundled noble-ed25519")
        expect(proof).to_contain_text("(no WebCrypto on this page)")
        shot(insecure, "identifier-verified-no-webcrypto.png")
    finally:
        context.close()


def test_the_address_can_ask_for_the_fallback(page: Page, net: ExplorerNet) -> None:
    page.goto(f"{net.base}/?crypto=fallback#/id/{PRODUCT}")
    pin_offered_genesis(page, net)
    proof = page.locator("#proof")
    expect(proof).to_contain_text(re.compile(r"✓ Verified at height \d+ by 2 of 2 validators"))
    expect(proof).to_contain_text("with the bundled noble-ed25519")
    expect(proof).to_contain_text("asked for it with ?crypto=fallback")

    # and a tampered proof is refused by the fallback for the same reason as by WebCrypto
    def rewrite_url(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        body["proof"]["record"]["view"]["values"][0]["data"]["value"] = "https://evil.example/x"
        route.fulfill(response=answer, json=body)

    page.route("**/api/handles/**", rewrite_url)
    page.reload()
    expect(page.locator("#proof")).to_contain_text("✗ Not verified: VIEW_MISMATCH")
    expect(page.locator("#proof")).to_contain_text("with the bundled noble-ed25519")
    shot(page, "identifier-tampered-noble.png")
