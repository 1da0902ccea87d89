"""The browser tests' world: real API and worker processes, Debian's Chromium driven by
Playwright (never `playwright install`), one world and one browser per module."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import api_key, bearer
from tests.e2e.feed_helpers import FeedWorld, feed_world

ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts" / "dashboard"
PASSWORD = "a long browser password"
PHONE = {"width": 360, "height": 740}
DESK = {"width": 1440, "height": 900}


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


@dataclass
class Shop:
    """A world with named stores, products (one with a hostile name) and users by role."""

    world: FeedWorld
    stores: dict[str, str] = field(default_factory=dict)  # id -> name
    users: dict[str, str] = field(default_factory=dict)  # role -> username
    ids: dict[str, str] = field(default_factory=dict)  # username -> user id
    skus: dict[str, str] = field(default_factory=dict)  # rice, lentils, evil -> SKU

    @property
    def base(self) -> str:
        return self.world.apis[0].base_url

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        """One API call with the admin key (or `key`)."""
        headers = {**bearer(key or self.world.admin_key), "Idempotency-Key": uuid.uuid4().hex}
        return httpx.request(method, self.base + path, json=body, headers=headers, timeout=30)

    def wait_for(self, path: str) -> None:
        """Until the read side knows what was just created (catalog writes have no
        position on every branch yet)."""
        deadline = time.monotonic() + 20
        while self.call("GET", path).status_code != 200:
            assert time.monotonic() < deadline, f"{path} never appeared"
            time.sleep(0.1)

    def user(self, role: str, stores: list[str]) -> str:
        username = f"{role}-{uuid.uuid4().hex[:6]}"
        body = {"username": username, "password": PASSWORD, "role": role, "stores": stores}
        created = self.call("POST", "/v1/users", body)
        assert created.status_code == 201, created.text
        self.users.setdefault(role, username)  # the first of a role is the journeys' own
        self.ids[username] = created.json()["id"]
        return username

    def sell(self, store: str, sku: str, quantity: str | int, **extra: Any) -> int:
        body = {"sale_id": uuid.uuid4().hex, "lines": [{"sku": sku, "quantity": quantity}], **extra}
        sold = self.call("POST", f"/v1/stores/{store}/sales", body)
        assert sold.status_code == 201, sold.text
        return int(sold.json()["position"])

    def receive(self, store: str, quantities: dict[str, int | str]) -> None:
        """One receipt, read back so the next page load sees it."""
        lines = [{"sku": sku, "quantity": quantity} for sku, quantity in quantities.items()]
        received = self.call("POST", f"/v1/stores/{store}/receipts", {"lines": lines})
        assert received.status_code == 201, received.text
        position = received.json()["position"]
        assert self.call("GET", f"/v1/stores/{store}/stock?min_position={position}").is_success

    def answers(self, method: str, path: str, body: Any = None, key: str | None = None) -> bool:
        """False when this branch has no such endpoint (404/405 with no route behind it)."""
        response = self.call(method, path, body, key)
        return not (
            response.status_code == 405
            or (response.status_code == 404 and response.json().get("code") in (None, "not_found"))
        )


def build_shop(world: FeedWorld) -> Shop:
    """Two stores, three products (whole, by the kilogram, hostile), users of every role."""
    shop = Shop(world)
    tag = uuid.uuid4().hex[:6]
    for suffix, name in (("a", "Lahore 1"), ("b", "Karachi 2")):
        store = f"s{tag}{suffix}"
        assert shop.call("POST", "/v1/stores", {"id": store, "name": name}).status_code == 201
        shop.stores[store] = name
    for short, name, unit, decimals in (
        ("rice", "Basmati Rice 5 kg", "each", 0),
        ("lentils", "Red Lentils loose", "kg", 3),
        ("evil", '<img src=x onerror="window.pwned=1">Tea', "each", 0),
    ):
        sku = f"{short[:4].upper()}{tag}"
        body = {
            "sku": sku,
            "name": name,
            "unit": unit,
            "decimals": decimals,
            "barcode": f"99{tag}{short}",
        }
        assert shop.call("POST", "/v1/products", body).status_code == 201
        shop.skus[short] = sku
    for store in shop.stores:
        shop.wait_for(f"/v1/stores/{store}")
    for sku in shop.skus.values():
        shop.wait_for(f"/v1/products/{sku}")
    first, second = list(shop.stores)
    shop.user("clerk", [first])
    shop.user("manager", [first, second])
    shop.user("auditor", [first])
    shop.user("viewer", [first])
    shop.user("admin", ["*"])
    return shop


@pytest.fixture(scope="module")
def shop(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    admin = api_key(settings, Role.ADMIN, ["*"], "browser admin")
    with feed_world(server_env, settings, Path(tmp_path_factory.mktemp("browser")), admin) as w:
        yield build_shop(w)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport=DESK, locale="en-US", timezone_id="UTC")
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose CSP violations and script errors fail the test."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None
    )
    yield opened
    assert not errors, errors


def sign_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form, by keyboard, and wait for the first store to show."""
    page.goto(base + "/")
    page.focus("#username")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_contain_text(username, timeout=10_000)
