"""Each role's day in the dashboard, in Chromium against real API and worker processes:
a clerk receives and counts, a manager adjusts and acknowledges, an auditor only reads,
an admin manages users and keys. Journeys on an endpoint this branch lacks (404/405)
end in `pytest.xfail` after probing it, so they run for real once it exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import PASSWORD, Shop, sign_in
from tests.e2e.api_servers import bearer

pytestmark = pytest.mark.e2e
TIMES = "\N{MULTIPLICATION SIGN}"


def first_store(shop: Shop) -> str:
    return next(iter(shop.stores))


def pick_store(page: Page, store: str) -> None:
    page.select_option("#store", store)
    expect(page.locator("#overview-store")).to_contain_text(
        page.locator("#store option:checked").inner_text().split(" (")[0]
    )


def fill_line(page: Page, form: str, sku: str, quantity: str) -> None:
    page.locator(f"#{form} .line input[name=sku]").first.fill(sku)
    page.locator(f"#{form} .line input[name=quantity]").first.fill(quantity)


def test_a_clerk_receives_with_a_retry_that_books_once_and_counts_with_the_discrepancy_shown(
    shop: Shop, page: Page
) -> None:
    store, lentils = first_store(shop), shop.skus["lentils"]
    sign_in(page, shop.base, shop.users["clerk"])
    expect(page.locator("#nav a[data-page=users]")).to_be_hidden()
    page.click("#nav a[data-page=work]")
    expect(page.locator("#f-adjust")).to_be_hidden()  # adjustments are a manager's
    expect(page.locator("#f-close")).to_be_hidden()

    # The first answer is lost on the way back (the receipt is booked); the retry sends
    # the same Idempotency-Key and is answered from the record: 12.5 kg, not 25.
    keys: list[str] = []

    def lose_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        route.fetch()
        if len(keys) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/receipts", lose_first_answer)
    fill_line(page, "f-receive", lentils, "12.5")
    page.fill("#f-receive input[name=reference]", "PO-1")
    page.click("#f-receive button[type=submit]")
    expect(page.locator("#f-receive .result")).to_contain_text("Submit again to retry")
    page.click("#f-receive button[type=submit]")
    expect(page.locator("#f-receive .result")).to_contain_text(
        "Already done before", timeout=10_000
    )
    assert len(keys) == 2 and keys[0] == keys[1], keys  # the lost answer's key, replayed

    page.fill("#f-count input[name=sku]", lentils)
    page.locator("#f-count input[name=sku]").dispatch_event("change")
    expect(page.locator("#f-count .expected")).to_contain_text("12.500 kg")
    page.fill("#f-count input[name=counted]", "12.25")
    expect(page.locator("#f-count .discrepancy")).to_have_text(
        "Discrepancy: -0.250 kg against expected."
    )
    page.click("#f-count button[type=submit]")
    expect(page.locator("#f-count .result")).to_contain_text("12.250 kg on hand", timeout=10_000)

    reads: list[str] = []
    page.on("request", lambda request: reads.append(request.url))
    page.click("#nav a[data-page=overview]")  # reads wait on the count's position
    expect(page.locator(f'#stock tr[data-sku="{lentils}"] td.on-hand')).to_have_text("12.250 kg")
    page.goto(f"{shop.base}/#ledger/{lentils}")
    expect(page.locator("#ledger tbody tr")).to_have_count(2)
    expect(page.locator("#ledger tbody tr").first).to_contain_text("+12.500 kg")
    # "By" names who acted (the clerk's username, from the event's metadata), not an id.
    clerk = shop.users["clerk"]
    expect(page.locator('#ledger tbody td[data-label="By"]')).to_have_text([clerk, clerk])
    assert any("/stock?" in url and "min_position=" in url for url in reads), reads
    assert shop.call("GET", f"/v1/stores/{store}/stock/{lentils}").json()["on_hand"] == "12.250"


def test_a_manager_sets_a_reorder_point_adjusts_and_acknowledges_the_alert(
    shop: Shop, page: Page
) -> None:
    store, rice = first_store(shop), shop.skus["rice"]
    shop.receive(store, {rice: 10})
    sign_in(page, shop.base, shop.users["manager"])
    pick_store(page, store)
    page.click("#nav a[data-page=work]")
    page.fill("#f-reorder input[name=sku]", rice)
    page.fill("#f-reorder input[name=min]", "8")
    page.click("#f-reorder button[type=submit]")
    expect(page.locator("#f-reorder .result")).to_contain_text("Done")
    page.fill("#f-adjust input[name=sku]", rice)
    page.fill("#f-adjust input[name=delta]", "-3")
    page.select_option("#f-adjust select[name=reason]", "damaged")
    page.click("#f-adjust button[type=submit]")
    expect(page.locator("#f-adjust .result")).to_contain_text(
        "Basmati Rice 5 kg at Lahore 1: 7 on hand"
    )

    page.click("#nav a[data-page=alerts]")
    card = page.locator("#alert-list li.low_stock", has_text="Basmati Rice 5 kg")
    expect(card).to_contain_text("Available 7, reorder point 8", timeout=10_000)
    alert_id = card.get_attribute("data-id")
    if not shop.answers("POST", f"/v1/alerts/{alert_id}/acknowledge", {"unknown_field": 1}):
        pytest.xfail("needs POST /v1/alerts/{id}/acknowledge")
    card.locator("input[name=note]").fill("Supplier called, delivery Friday")
    card.locator("button[type=submit]").click()
    expect(card).to_contain_text("Supplier called, delivery Friday")
    expect(card).to_contain_text(f"Acknowledged by {shop.users['manager']}")


def test_a_live_alert_arriving_while_a_manager_types_a_note_keeps_the_note_and_the_focus(
    shop: Shop, page: Page
) -> None:
    """The feed re-draws the alert list when another alert opens; the note half typed
    into one card's form survives it, caret and all, and is the one acknowledged. The
    second store, so no other journey's stock is in the way."""
    store, rice, lentils = list(shop.stores)[1], shop.skus["rice"], shop.skus["lentils"]
    shop.receive(store, {rice: 10, lentils: 10})
    for sku in (rice, lentils):
        path = f"/v1/stores/{store}/stock/{sku}/reorder-point"
        assert shop.call("PUT", path, {"min": 8}).is_success
    line = {"sku": rice, "delta": -4, "reason": "damaged"}
    assert shop.call("POST", f"/v1/stores/{store}/adjustments", {"lines": [line]}).is_success
    sign_in(page, shop.base, shop.users["manager"])
    pick_store(page, store)
    page.click("#nav a[data-page=alerts]")
    cards = page.locator("#alert-list li.low_stock")
    rice_card = cards.filter(has_text=rice)
    expect(rice_card).to_contain_text("Available 6, reorder point 8", timeout=10_000)
    note = rice_card.locator("input[name=note]")
    note.press_sequentially("Supplier called")

    line = {"sku": lentils, "delta": -5, "reason": "expired"}
    assert shop.call("POST", f"/v1/stores/{store}/adjustments", {"lines": [line]}).is_success
    expect(cards.filter(has_text=lentils)).to_be_visible(timeout=10_000)  # the feed's
    expect(note).to_have_value("Supplier called")
    expect(note).to_be_focused()
    note.press_sequentially(", delivery Friday")  # the caret stayed at the end
    note.press("Enter")
    expect(rice_card).to_contain_text("“Supplier called, delivery Friday”")
    expect(cards.filter(has_text=lentils).locator("input[name=note]")).to_have_value("")


def test_an_auditor_reads_every_view_and_finds_no_form(shop: Shop, page: Page) -> None:
    store, rice = first_store(shop), shop.skus["rice"]
    shop.receive(store, {rice: 1})
    sign_in(page, shop.base, shop.users["auditor"])
    expect(page.locator("#nav a[data-page=work]")).to_be_hidden()
    page.goto(f"{shop.base}/#work")  # a page the role may not use falls back
    expect(page.locator("#page-overview")).to_be_visible()
    expect(page.locator("#page-work")).to_be_hidden()
    expect(page.locator("form.cmd:visible")).to_have_count(0)
    expect(page.locator(f'#stock tr[data-sku="{rice}"]')).to_be_visible(timeout=10_000)

    page.click("#nav a[data-page=product]")
    page.fill("#q", f"99{rice[4:]}rice")  # the barcode
    page.keyboard.press("Enter")
    expect(page.locator("#hits button")).to_have_count(1)
    page.fill("#q", "basmati")
    page.keyboard.press("Enter")
    page.locator("#hits button", has_text="Basmati Rice 5 kg").first.click()
    expect(page.locator("#everywhere tbody tr")).to_have_count(1)  # the auditor's one store
    page.click("#nav a[data-page=alerts]")
    expect(page.locator("#alert-list .ack-form")).to_have_count(0)


def test_the_ticker_speaks_in_sentences_marks_late_sales_groups_bursts_and_escapes_names(
    shop: Shop, page: Page
) -> None:
    store, rice, evil = first_store(shop), shop.skus["rice"], shop.skus["evil"]
    shop.receive(store, {rice: 50, evil: 50})
    sign_in(page, shop.base, shop.users["viewer"])
    expect(page.locator("#connection")).to_have_text("live", timeout=15_000)

    on_hand = page.locator(f'#stock tr[data-sku="{rice}"] td.on-hand')
    before = int(on_hand.inner_text().replace(",", ""))
    shop.sell(store, rice, 2)
    expect(on_hand).to_have_text(f"{before - 2:,}", timeout=5_000)
    expect(page.locator("#ticker li").first).to_have_text(
        re.compile(rf"^Sold 2 {TIMES} Basmati Rice 5 kg at Lahore 1, \d{{1,2}}:\d\d(\s[AP]M)?$"),
        timeout=5_000,
    )
    for _ in range(3):
        shop.sell(store, rice, 1)
    expect(page.locator("#ticker li").first).to_contain_text(
        f"Sold 5 {TIMES} Basmati Rice 5 kg (4 times)"
    )
    ten_minutes_ago = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    shop.sell(store, rice, 1, offline=True, occurred_at=ten_minutes_ago)
    expect(page.locator("#ticker li").first).to_contain_text("— recorded late")
    shop.sell(store, evil, 1)
    expect(page.locator("#ticker li").first).to_contain_text(
        f'Sold 1 {TIMES} <img src=x onerror="window.pwned=1">Tea'
    )
    assert page.evaluate("window.pwned") is None
    assert page.locator("#stock img, #ticker img").count() == 0


def test_an_admin_creates_a_user_and_an_api_key_shown_once_then_revokes_it(
    shop: Shop, page: Page
) -> None:
    sign_in(page, shop.base, shop.users["admin"])
    page.click("#nav a[data-page=users]")
    form = page.locator("#f-user-create")
    form.locator("input[name=username]").fill("new-clerk")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("select[name=role]").select_option("clerk")
    form.locator("input[name=stores]").fill(first_store(shop))
    form.locator("button[type=submit]").click()
    expect(form.locator(".result")).to_have_text("Created new-clerk.")
    expect(page.locator('#users tr[data-user="new-clerk"]')).to_contain_text("clerk")

    page.click("#nav a[data-page=keys]")
    form = page.locator("#f-key-create")
    form.locator("input[name=name]").fill("till 7")
    form.locator("select[name=role]").select_option("clerk")
    form.locator("input[name=stores]").fill(first_store(shop))
    form.locator("button[type=submit]").click()
    key = page.locator("#new-key-value")
    expect(key).not_to_have_value("")
    secret = key.input_value()
    assert httpx.get(f"{shop.base}/v1/me", headers=bearer(secret), timeout=10).status_code == 200
    row = page.locator('#keys tr[data-key="till 7"]')
    expect(row).to_be_visible()
    row.get_by_role("button", name="Revoke the key till 7").click()
    expect(row).to_have_count(0)
    assert httpx.get(f"{shop.base}/v1/me", headers=bearer(secret), timeout=10).status_code == 401


def test_an_admin_rescopes_disables_and_resets_a_users_password(shop: Shop, page: Page) -> None:
    username = shop.user("viewer", [first_store(shop)])
    user_id = shop.ids[username]
    if not shop.answers("PATCH", f"/v1/users/{user_id}", {"unknown_field": 1}):
        pytest.xfail("needs PATCH /v1/users/{id}")
    if not shop.answers("POST", f"/v1/users/{user_id}/password", {"unknown_field": 1}):
        pytest.xfail("needs POST /v1/users/{id}/password")
    sign_in(page, shop.base, shop.users["admin"])
    page.click("#nav a[data-page=users]")
    change = page.locator("#f-user-change")
    change.locator("select[name=user]").select_option(label=username)
    change.locator("select[name=role]").select_option("auditor")
    change.locator("input[name=stores]").fill(",".join(shop.stores))
    change.locator("button[type=submit]").click()
    expect(page.locator(f'#users tr[data-user="{username}"]')).to_contain_text("auditor")

    reset = page.locator("#f-user-reset")
    reset.locator("select[name=user]").select_option(label=username)
    reset.locator("input[name=new_password]").fill("a brand new long password")
    reset.locator("button[type=submit]").click()
    expect(reset.locator(".result")).to_contain_text("Password reset")
    token = httpx.post(
        f"{shop.base}/v1/auth/token",
        json={"username": username, "password": "a brand new long password"},
        timeout=10,
    )
    assert token.status_code == 200, token.text

    change.locator("select[name=user]").select_option(label=username)
    change.locator("input[name=disabled]").check()
    change.locator("button[type=submit]").click()
    expect(page.locator(f'#users tr[data-user="{username}"]')).to_contain_text("disabled")
    refused = httpx.post(
        f"{shop.base}/v1/auth/token",
        json={"username": username, "password": "a brand new long password"},
        timeout=10,
    )
    assert refused.status_code == 401


def test_a_user_changes_their_password_and_their_other_sessions_end(shop: Shop, page: Page) -> None:
    username = shop.user("viewer", [first_store(shop)])
    sign_in(page, shop.base, username)
    token = page.evaluate("sessionStorage.getItem('inventory.token')")
    other = httpx.post(
        f"{shop.base}/v1/auth/token", json={"username": username, "password": PASSWORD}, timeout=10
    ).json()["access_token"]
    probe = httpx.post(
        f"{shop.base}/v1/me/password", json={"unknown_field": 1}, headers=bearer(token), timeout=10
    )
    if probe.status_code in (404, 405):
        pytest.xfail("needs POST /v1/me/password")
    page.click("#nav a[data-page=account]")
    form = page.locator("#f-password")
    form.locator("input[name=current_password]").fill(PASSWORD)
    form.locator("input[name=new_password]").fill("another long password")
    form.locator("input[name=again]").fill("another long password")
    form.locator("button[type=submit]").click()
    expect(form.locator(".result")).to_contain_text("Password changed")
    assert httpx.get(f"{shop.base}/v1/me", headers=bearer(other), timeout=10).status_code == 401
    assert httpx.get(f"{shop.base}/v1/me", headers=bearer(token), timeout=10).status_code == 200
    expect(page.locator("#who")).to_contain_text(username)
    fresh = {"username": username, "password": "another long password"}
    assert httpx.post(f"{shop.base}/v1/auth/token", json=fresh, timeout=10).status_code == 200


def test_numbers_follow_the_users_locale_and_the_feed_url_carries_no_token(
    shop: Shop, page: Page
) -> None:
    store, lentils = first_store(shop), shop.skus["lentils"]
    shop.receive(store, {lentils: "1000.5"})
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(locale="de-DE", viewport={"width": 1440, "height": 900})
    german = context.new_page()
    urls: list[str] = []
    german.on("websocket", lambda socket: urls.append(socket.url))
    sign_in(german, shop.base, shop.users["viewer"])
    expect(german.locator(f'#stock tr[data-sku="{lentils}"] td.on-hand')).to_contain_text(
        ",", timeout=10_000
    )
    text = german.locator(f'#stock tr[data-sku="{lentils}"] td.on-hand').inner_text()
    assert text.endswith(" kg") and "." in text and text.count(",") == 1, text  # 1.012,750 kg style
    token = german.evaluate("sessionStorage.getItem('inventory.token')")
    assert urls and all(
        "/v1/feed" in url and "token" not in url and token not in url for url in urls
    ), urls
    context.close()
