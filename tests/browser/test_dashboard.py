"""The dashboard in Debian's Chromium (headless, driven by Playwright) against real
API and worker processes: sign in, pick a store, watch a sale arrive."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import api_key, bearer
from tests.e2e.feed_helpers import FeedWorld, feed_world

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "a long browser password"


def chromium() -> str:
    """Debian's Chromium, installed on first use where we may (a fresh machine keeps the
    README's promise: `uv run pytest` needs no set-up of its own)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"], check=True, env=env, capture_output=True
        )
        path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)")
    return path


@pytest.fixture(scope="module")
def world(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeedWorld]:
    admin = api_key(settings, Role.ADMIN, ["*"], "browser admin")
    with feed_world(server_env, settings, Path(tmp_path_factory.mktemp("browser")), admin) as w:
        yield w


@pytest.fixture
def page() -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def signed_in_on_a_store(world: FeedWorld, page: Page) -> tuple[str, str]:
    """A viewer of a new store with one SKU in stock, signed in, the store picked."""
    store = f"b{uuid.uuid4().hex[:10]}"
    world.open_store(store)
    sku = world.products[0]
    world.receive(store, [sku], quantity=20)
    username = f"viewer-{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{world.apis[0].base_url}/v1/users",
        json={"username": username, "password": PASSWORD, "role": "viewer", "stores": [store]},
        headers=bearer(world.admin_key),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    page.goto(world.apis[0].base_url + "/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#store")).to_have_value(store, timeout=10_000)
    page.select_option("#store", store)
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    return store, sku


def sell(world: FeedWorld, store: str, sku: str, quantity: int) -> None:
    world.post(
        f"/v1/stores/{store}/sales",
        {"sale_id": uuid.uuid4().hex, "lines": [{"sku": sku, "quantity": quantity}]},
    )


def test_a_sale_reaches_the_ticker_within_two_seconds(world: FeedWorld, page: Page) -> None:
    store, sku = signed_in_on_a_store(world, page)

    sell(world, store, sku, 3)
    expect(page.locator("#ticker li", has_text="stock.sold")).to_have_count(1, timeout=2_000)
    page.screenshot(path=ARTIFACTS / "dashboard-ticker.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)


def test_a_sale_changes_the_rows_quantity_within_two_seconds(
    world: FeedWorld, settings: Settings, page: Page
) -> None:
    store, sku = signed_in_on_a_store(world, page)
    on_hand = page.locator(f'#stock tr[data-sku="{sku}"] td.on-hand')
    expect(on_hand).to_have_text("20", timeout=10_000)

    sell(world, store, sku, 3)
    expect(on_hand).to_have_text("17", timeout=2_000)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)


def test_after_a_drop_it_says_so_reconnects_with_after_and_shows_what_it_missed(
    world: FeedWorld, page: Page
) -> None:
    store, sku = signed_in_on_a_store(world, page)
    sell(world, store, sku, 1)
    sold = page.locator("#ticker li", has_text="stock.sold")
    expect(sold).to_have_count(1, timeout=10_000)

    # Drop the socket with the next retry 4 s away, and sell meanwhile.
    page.evaluate("state.retry = 3; state.socket.close()")
    expect(page.locator("#connection")).to_have_text("reconnecting…", timeout=2_000)
    expect(page.locator("#notice")).to_contain_text("Live feed dropped", timeout=2_000)
    sell(world, store, sku, 2)

    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator("#notice")).to_contain_text("Reconnected after a drop; resumed after")
    expect(sold).to_have_count(2, timeout=5_000)  # the missed sale, once
    expect(page.locator(f'#stock tr[data-sku="{sku}"] td.on-hand')).to_have_text("17")
    page.screenshot(path=ARTIFACTS / "dashboard-reconnected.png", full_page=True)


def test_the_feeds_url_carries_no_token_the_subprotocol_does(world: FeedWorld, page: Page) -> None:
    urls: list[str] = []
    page.on("websocket", lambda socket: urls.append(socket.url))

    signed_in_on_a_store(world, page)

    token = page.evaluate("sessionStorage.getItem('inventory.token')")
    assert token
    assert urls, "the dashboard opened no WebSocket"
    assert all("/v1/feed" in url for url in urls)
    assert not any("token" in url or token in url for url in urls), urls
    assert page.evaluate("state.socket.protocol") == "inventory.v1"
