"""The dashboard's quality bar in Chromium: every page at 360x740 and 1440x900 with no
serious or critical axe-core violation, nothing wider than the screen, a screenshot of
each under .ci/artifacts/dashboard/; the badge through a stopped and restarted API; the
feed after a token refresh."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, DESK, PASSWORD, PHONE, Shop, sign_in
from tests.e2e.api_servers import ApiServer

pytestmark = pytest.mark.e2e

PAGES = ["overview", "product", "ledger", "alerts", "work", "users", "keys", "account"]


class SamePort(ApiServer):
    """An API process on a port a stopped one used: the page's origin comes back."""

    def __init__(self, env: dict[str, str], log: Any, port: int) -> None:
        self.fixed = port
        super().__init__(env, log)
        self.port, self.base_url = port, f"http://127.0.0.1:{port}"

    def command(self) -> list[str]:
        """`inventory serve` on the fixed port."""
        return [*super().command()[:-1], str(self.fixed)]


def serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands."""
    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def overflow(page: Page) -> list[str]:
    """Elements that reach past the right edge of the viewport (cut off on a phone)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('body *')].filter((e) => {
                 const box = e.getBoundingClientRect();
                 return e.offsetParent !== null && box.width > 0
                   && box.right > document.documentElement.clientWidth + 1;
               }).slice(0, 5).map((e) => e.outerHTML.slice(0, 120))"""
        )
    )


def visit(page: Page, shop: Shop, name: str) -> None:
    """Open a page with something on it to look at."""
    rice = shop.skus["rice"]
    target = {"product": f"product/{rice}", "ledger": f"ledger/{rice}"}.get(name, name)
    page.goto(f"{shop.base}/#{target}")
    expect(page.locator(f"#page-{name}")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
    page.wait_for_load_state("networkidle")


def test_every_page_at_both_sizes_passes_axe_fits_the_screen_and_is_photographed(
    shop: Shop, browser: Browser
) -> None:
    store, rice = next(iter(shop.stores)), shop.skus["rice"]
    shop.receive(store, {rice: 5})
    shop.call("PUT", f"/v1/stores/{store}/stock/{rice}/reorder-point", {"min": 9})
    shop.sell(store, rice, 1)
    problems: dict[str, list[str]] = {}
    started = time.monotonic()
    for label, size in (("phone", PHONE), ("desk", DESK)):
        context = browser.new_context(viewport=size, locale="en-US", timezone_id="UTC")
        page = context.new_page()
        page.goto(shop.base + "/")
        problems[f"sign-in-{label}"] = serious(page) + overflow(page)
        page.screenshot(path=ARTIFACTS / f"sign-in-{label}.png", full_page=True)
        sign_in(page, shop.base, shop.users["admin"])
        page.select_option("#store", store)  # the admin sees other modules' stores too
        for name in PAGES:
            visit(page, shop, name)
            problems[f"{name}-{label}"] = serious(page) + overflow(page)
            page.screenshot(path=ARTIFACTS / f"{name}-{label}.png", full_page=True)
        context.close()
    print(f"axe and screenshots of {len(problems)} pages took {time.monotonic() - started:.1f} s")  # noqa: T201
    assert {name: found for name, found in problems.items() if found} == {}
    assert len(list(ARTIFACTS.glob("*.png"))) >= 2 * (len(PAGES) + 1)


def test_the_page_is_served_with_a_strict_content_security_policy(shop: Shop) -> None:
    response = httpx.get(shop.base + "/", timeout=10)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    html = response.text
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert "https://" not in html  # no CDN


def test_the_badge_goes_offline_when_the_api_stops_and_live_when_it_returns(
    shop: Shop, page: Page
) -> None:
    api = shop.world.apis[1]
    store, rice = next(iter(shop.stores)), shop.skus["rice"]
    sign_in(page, api.base_url, shop.users["manager"])
    badge = page.locator("#connection")
    expect(badge).to_have_text("live", timeout=15_000)
    shop.sell(store, rice, 2)  # the feed resumes after the last event it saw
    expect(page.locator("#ticker li", has_text="Sold 2")).not_to_have_count(0, timeout=5_000)

    api.stop()
    expect(badge).to_have_text("offline", timeout=10_000)
    expect(page.locator("#notice")).to_contain_text("Live feed offline")
    page.screenshot(path=ARTIFACTS / "badge-offline.png")
    shop.sell(store, rice, 1)  # through the other API process, while this one is down

    back = SamePort(api.env, api.log, api.port)
    shop.world.apis[1] = back  # the world stops it at the end
    back.wait_live()
    expect(badge).to_have_text("live", timeout=20_000)
    # The missed sale, once, joins the line of the one before it (a burst of one item).
    expect(page.locator("#ticker li").first).to_contain_text("Sold 3", timeout=5_000)
    expect(page.locator("#notice")).to_contain_text("nothing missed")


def test_the_feed_keeps_flowing_after_a_silent_token_refresh(shop: Shop, page: Page) -> None:
    store, rice = next(iter(shop.stores)), shop.skus["rice"]
    shop.receive(store, {rice: 3})
    sign_in(page, shop.base, shop.users["viewer"])
    expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
    before = page.evaluate("sessionStorage.getItem('inventory.token')")
    probe = httpx.post(
        f"{shop.base}/v1/auth/refresh", headers={"Authorization": f"Bearer {before}"}, timeout=10
    )
    if probe.status_code in (404, 405):
        pytest.xfail("needs POST /v1/auth/refresh")

    # The page's own timer would fire at four fifths of the token's life; call it now.
    refreshed = page.evaluate("import('/static/js/session.js').then((m) => m.refresh())")
    assert refreshed is True
    after = page.evaluate("sessionStorage.getItem('inventory.token')")
    assert after and after != before
    expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
    shop.sell(store, rice, 3)
    expect(page.locator("#ticker li", has_text="Sold 3")).not_to_have_count(0, timeout=5_000)
    assert PASSWORD not in page.content()
