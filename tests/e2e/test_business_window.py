"""The business-time window over HTTP: a year-1 sale is refused and appends nothing, the
window's edges hold exactly, clerks and keys backdate at most `backdate_days` on every
dated route while a manager user reaches 2000-01-01 and the period close, and times
outside the calendar are problems, never 500s."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key
from tests.e2e.reading import Client, wait_until
from tests.e2e.window_setup import events_of, user_client

pytestmark = pytest.mark.e2e
API_WORKER = True  # the conftest's API process runs with a worker: reads need projections

RUN = uuid.uuid4().hex[:6]
STORE, OTHER, KIRITIMATI = f"win{RUN}", f"win{RUN}o", f"win{RUN}k"
SKU = f"WIN.{RUN}"
EARLIEST = "2000-01-01T00:00:00Z"
SOLD = "sold-in-2000"


@pytest.fixture(scope="module")
def manager(api: ApiServer, settings: Settings) -> Client:
    """A manager user: a person, so bound only by 2000-01-01 and the period close."""
    return user_client(api, settings, Role.MANAGER)


@pytest.fixture(scope="module")
def senders(
    api: ApiServer, settings: Settings, manager: Client, admin: Client
) -> dict[str, Client]:
    """The stores, stock and an old sale every test here uses; the limited senders."""
    for store, zone in ((STORE, "UTC"), (OTHER, "UTC"), (KIRITIMATI, "Pacific/Kiritimati")):
        created = admin.post("/v1/stores", {"id": store, "name": store, "timezone": zone})
        assert created.status_code == 201, created.text
    assert admin.post("/v1/products", {"sku": SKU, "name": SKU}).status_code == 201
    for store in (STORE, KIRITIMATI):
        receipt = {"lines": [{"sku": SKU, "quantity": 1000}], "occurred_at": EARLIEST}
        manager.command(f"/v1/stores/{store}/receipts", receipt)
    sale = {"sale_id": SOLD, "lines": [{"sku": SKU, "quantity": 100}], "occurred_at": EARLIEST}
    manager.command(f"/v1/stores/{STORE}/sales", sale)
    return {
        "clerk": Client(api, api_key(settings, Role.CLERK, ["*"], "window clerk")),
        "manager key": Client(api, api_key(settings, Role.MANAGER, ["*"], "window device")),
    }


def iso(at: datetime) -> str:
    return at.isoformat()


def lines(amount: str = "quantity") -> list[dict[str, Any]]:
    return [{"sku": SKU, amount: 1}]


def open_transfer(manager: Client) -> str:
    """A transfer dispatched 40 days ago, open for receipts."""
    transfer_id = uuid.uuid4().hex
    dispatched = iso(datetime.now(UTC) - timedelta(days=40))
    manager.command(
        "/v1/transfers",
        {
            "transfer_id": transfer_id,
            "from_store": STORE,
            "to_store": OTHER,
            "lines": [{"sku": SKU, "quantity": 10}],
            "occurred_at": dispatched,
        },
    )
    return transfer_id


Body = Callable[[Client], tuple[str, dict[str, Any]]]
DATED: dict[str, tuple[str, Body]] = {
    "receipts": ("clerk", lambda _: (f"/v1/stores/{STORE}/receipts", {"lines": lines()})),
    "sales": (
        "clerk",
        lambda _: (f"/v1/stores/{STORE}/sales", {"sale_id": uuid.uuid4().hex, "lines": lines()}),
    ),
    "returns": (
        "clerk",
        lambda _: (f"/v1/stores/{STORE}/returns", {"sale_id": SOLD, "lines": lines()}),
    ),
    "adjustments": (
        "manager key",
        lambda _: (
            f"/v1/stores/{STORE}/adjustments",
            {"lines": [{"sku": SKU, "delta": 1, "reason": "found"}]},
        ),
    ),
    "counts": (
        "clerk",
        lambda _: (f"/v1/stores/{STORE}/counts", {"lines": [{"sku": SKU, "counted": 900}]}),
    ),
    "transfers": (
        "manager key",
        lambda _: (
            "/v1/transfers",
            {
                "transfer_id": uuid.uuid4().hex,
                "from_store": STORE,
                "to_store": OTHER,
                "lines": lines(),
            },
        ),
    ),
    "transfer receipts": (
        "manager key",
        lambda manager: (f"/v1/transfers/{open_transfer(manager)}/receive", {"lines": lines()}),
    ),
}


@pytest.mark.parametrize("route", DATED)
def test_a_clerk_or_key_cannot_backdate_past_backdate_days_on_any_dated_route(
    route: str, senders: dict[str, Client], manager: Client
) -> None:
    limited, body = DATED[route]
    month_ago = iso(datetime.now(UTC) - timedelta(days=31))
    path, data = body(manager)
    refused = senders[limited].post(path, {**data, "occurred_at": month_ago})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "occurred_at_out_of_range"
    assert {"field", "earliest", "latest", "message"} <= set(problem["errors"][0])

    within = iso(datetime.now(UTC) - timedelta(days=29))
    path, data = body(manager)
    assert senders[limited].post(path, {**data, "occurred_at": within}).status_code == 201
    path, data = body(manager)
    assert manager.post(path, {**data, "occurred_at": month_ago}).status_code == 201
    path, data = body(manager)
    assert manager.post(path, {**data, "occurred_at": EARLIEST}).status_code == 201


@pytest.mark.parametrize(
    ("store", "year_one"),
    [(STORE, "0001-01-01T00:00:00Z"), (KIRITIMATI, "0001-01-01T00:00:00+14:00")],
)
def test_a_year_one_sale_is_out_of_range_and_appends_nothing(
    store: str, year_one: str, senders: dict[str, Client], manager: Client, settings: Settings
) -> None:
    before = events_of(settings, store)
    sale = {"sale_id": uuid.uuid4().hex, "lines": lines(), "occurred_at": year_one}
    response = manager.post(f"/v1/stores/{store}/sales", sale)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "occurred_at_out_of_range"
    assert response.json()["errors"][0]["earliest"] == "2000-01-01T00:00:00+00:00"
    assert events_of(settings, store) == before


def test_the_window_edges_hold_to_the_second(senders: dict[str, Client], manager: Client) -> None:
    path = f"/v1/stores/{STORE}/receipts"
    assert manager.post(path, {"lines": lines(), "occurred_at": EARLIEST}).status_code == 201
    second_before = {"lines": lines(), "occurred_at": "1999-12-31T23:59:59Z"}
    assert manager.post(path, second_before).json()["code"] == "occurred_at_out_of_range"
    # The server's now is at or after the client's: now+5min as the client saw it fits.
    latest = iso(datetime.now(UTC) + timedelta(minutes=5))
    assert manager.post(path, {"lines": lines(), "occurred_at": latest}).status_code == 201
    for _ in range(5):  # +5min+1s is refused unless the request itself took a second
        sent = time.monotonic()
        beyond = iso(datetime.now(UTC) + timedelta(minutes=5, seconds=1))
        response = manager.post(path, {"lines": lines(), "occurred_at": beyond})
        if time.monotonic() - sent < 1:
            assert response.json()["code"] == "occurred_at_out_of_range"
            return
    pytest.fail("every request took a second or more")


def test_a_manager_dates_down_to_the_period_close_and_not_onto_it(
    senders: dict[str, Client], manager: Client, settings: Settings, api: ApiServer
) -> None:
    admin = Client(api, api_key(settings, Role.ADMIN, ["*"], "window close"))
    store = f"win{uuid.uuid4().hex[:8]}"
    assert admin.post("/v1/stores", {"id": store, "name": store}).status_code == 201
    until = "2000-06-01T00:00:00Z"
    manager.command(f"/v1/stores/{store}/period-close", {"until": until})
    path = f"/v1/stores/{store}/receipts"
    after = {"lines": lines(), "occurred_at": "2000-06-01T00:00:01Z"}
    assert manager.post(path, after).status_code == 201
    onto = manager.post(path, {"lines": lines(), "occurred_at": until})
    assert (onto.status_code, onto.json()["code"]) == (409, "period_closed")


def test_a_store_takes_and_shows_its_backdate_days(
    senders: dict[str, Client], api: ApiServer, settings: Settings
) -> None:
    admin = Client(api, api_key(settings, Role.ADMIN, ["*"], "window stores"))
    store = f"win{uuid.uuid4().hex[:8]}"
    created = admin.post("/v1/stores", {"id": store, "name": store, "backdate_days": 7})
    assert (created.status_code, created.json()["backdate_days"]) == (201, 7)
    plain = admin.post("/v1/stores", {"id": f"{store}d", "name": store})
    assert plain.json()["backdate_days"] == 30
    wait_until(lambda: admin.get(f"/v1/stores/{store}").status_code == 200)
    assert admin.get(f"/v1/stores/{store}").json()["backdate_days"] == 7  # the read model
    for days in (-1, 36501, 1.5):
        bad = admin.post("/v1/stores", {"id": f"{store}x", "name": store, "backdate_days": days})
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_failed")
    eight_days_ago = iso(datetime.now(UTC) - timedelta(days=8))
    assert admin.post("/v1/products", {"sku": f"S.{store}", "name": "s"}).status_code == 201
    receipt = {"lines": [{"sku": f"S.{store}", "quantity": 1}], "occurred_at": eight_days_ago}
    refused = senders["clerk"].post(f"/v1/stores/{store}/receipts", receipt)
    assert refused.json()["code"] == "occurred_at_out_of_range"


FAR = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00Z")


@pytest.mark.parametrize("value", FAR)
def test_times_outside_the_calendar_are_problems_never_500s(
    value: str, senders: dict[str, Client], manager: Client
) -> None:
    item = f"/v1/stores/{STORE}/stock/{SKU}"
    for path, name in (
        (item, "as_of"),
        (item, "known_at"),
        (f"{item}/ledger", "from"),
        (f"{item}/ledger", "to"),
    ):
        response = manager.get(path, **{name: value})
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
        assert response.json()["errors"][0]["field"] == name
    reservation = {"reservation_id": uuid.uuid4().hex, "lines": lines(), "expires_at": value}
    held = manager.post(f"/v1/stores/{STORE}/reservations", reservation)
    assert (held.status_code, held.json()["code"]) == (422, "validation_failed")
    closed = manager.post(f"/v1/stores/{STORE}/period-close", {"until": value})
    assert (closed.status_code, closed.json()["code"]) == (422, "validation_failed")
    report = manager.get("/v1/reports/movements", store=STORE, **{"from": value[:10]})
    assert report.status_code == 200, report.text


def test_the_openapi_document_states_the_window_and_backdate_days(manager: Client) -> None:
    document = manager.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    store = next(s for name, s in schemas.items() if name.endswith("NewStore"))
    assert store["properties"]["backdate_days"]["maximum"] == 36500
    assert store["properties"]["backdate_days"]["default"] == 30
    assert "occurred_at_out_of_range" in str(document["paths"]["/v1/stores/{store}/sales"])
    assert "2000-01-01" in str(next(s for n, s in schemas.items() if n.endswith("Sale")))
