"""Reports over HTTP with a real worker: movement totals (JSON, CSV), low stock, async runs."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key
from tests.e2e.reading import Client, wait_until

pytestmark = pytest.mark.e2e
API_WORKER = True  # the conftest's API process runs with a worker: reads need projections

# A minute ago, not today's noon: before noon UTC that lay in the future and every
# command dated by it was refused (occurred_at at most 5 minutes ahead).
TODAY = datetime.now(UTC) - timedelta(minutes=1)
YESTERDAY = TODAY - timedelta(days=1)


def command(admin: Client, path: str, body: dict[str, Any], method: str = "POST") -> int:
    response = admin.post(path, body, method=method)
    assert response.status_code in (201, 409), response.text
    return int(response.json().get("position", 0))


def stocked_store(admin: Client, store: str, sku: str) -> int:
    """Receipts and sales over two days; returns the last position."""
    command(admin, "/v1/stores", {"id": store, "name": store})
    command(admin, "/v1/products", {"sku": sku, "name": sku, "decimals": 1})
    receipts = f"/v1/stores/{store}/receipts"
    command(
        admin,
        receipts,
        {"lines": [{"sku": sku, "quantity": 10}], "occurred_at": YESTERDAY.isoformat()},
    )
    command(
        admin,
        receipts,
        {"lines": [{"sku": sku, "quantity": "2.5"}], "occurred_at": TODAY.isoformat()},
    )
    position = 0
    for number in range(3):
        position = command(
            admin,
            f"/v1/stores/{store}/sales",
            {
                "sale_id": f"s{number}",
                "lines": [{"sku": sku, "quantity": 1}],
                "occurred_at": TODAY.isoformat(),
            },
        )
    return position


def test_movement_totals_per_store_sku_and_type_in_json_and_csv(
    admin: Client, store_id: str
) -> None:
    sku = f"M.{store_id}"
    position = stocked_store(admin, store_id, sku)

    response = admin.get("/v1/reports/movements", store=store_id, min_position=position)
    today = admin.get("/v1/reports/movements", store=store_id, **{"from": TODAY.date()})
    as_csv = admin.get("/v1/reports/movements", store=store_id, format="csv")

    assert response.status_code == 200, response.text
    assert int(response.headers["X-Read-Position"]) >= position
    assert response.json() == {
        "items": [
            {
                "store": store_id,
                "sku": sku,
                "type": "stock.received",
                "count": 2,
                "quantity": "12.5",
            },
            {"store": store_id, "sku": sku, "type": "stock.sold", "count": 3, "quantity": 3},
        ],
        "next_cursor": None,
    }
    assert [(i["type"], i["count"]) for i in today.json()["items"]] == [
        ("stock.received", 1),
        ("stock.sold", 3),
    ]
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["type"], r["count"], r["quantity"]) for r in lines] == [
        ("stock.received", "2", "12.5"),
        ("stock.sold", "3", "3"),
    ]


def test_movement_days_are_the_store_s_local_days(admin: Client, store_id: str) -> None:
    """A receipt at 22:00 on 3 March in Los Angeles (06:00 on the 4th in UTC) is in the
    store's report for the 3rd, and not in the one for the 4th."""
    sku = f"L.{store_id}"
    # Dated months back: the store lets API keys backdate that far (backdate_days).
    la = {"id": store_id, "name": "LA", "timezone": "America/Los_Angeles", "backdate_days": 3650}
    command(admin, "/v1/stores", la)
    command(admin, "/v1/products", {"sku": sku, "name": sku})
    receipt = {"lines": [{"sku": sku, "quantity": 4}], "occurred_at": "2026-03-03T22:00:00-08:00"}
    position = command(admin, f"/v1/stores/{store_id}/receipts", receipt)

    third = admin.get(
        "/v1/reports/movements",
        store=store_id,
        min_position=position,
        **{"from": "2026-03-03", "to": "2026-03-03"},
    )
    fourth = admin.get("/v1/reports/movements", store=store_id, **{"from": "2026-03-04"})

    assert third.status_code == 200, third.text
    assert third.json()["items"] == [
        {"store": store_id, "sku": sku, "type": "stock.received", "count": 1, "quantity": 4}
    ]
    assert fourth.json()["items"] == []


def test_a_store_s_time_zone_must_name_a_place(admin: Client, store_id: str) -> None:
    response = admin.post("/v1/stores", {"id": store_id, "name": "X", "timezone": "Mars/Olympus"})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert admin.get(f"/v1/stores/{store_id}").status_code == 404


def test_a_manager_reports_only_on_the_stores_in_scope(
    api: ApiServer, admin: Client, settings: Settings, store_id: str
) -> None:
    other = f"{store_id}o"
    stocked_store(admin, store_id, f"S.{store_id}")
    position = stocked_store(admin, other, f"S.{store_id}")
    manager = Client(api, api_key(settings, Role.MANAGER, [store_id], "reports manager"))

    mine = manager.get("/v1/reports/movements", min_position=position)

    assert {item["store"] for item in mine.json()["items"]} == {store_id}
    assert manager.get("/v1/reports/movements", store=other).status_code == 403
    reversed_range = admin.get(
        "/v1/reports/movements", **{"from": "2026-02-02", "to": "2026-02-01"}
    )
    assert reversed_range.status_code == 422


def wait_done(client: Client, report_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/v1/reports/{report_id}").json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_a_requested_report_is_built_by_the_worker_and_read_by_its_requester_only(
    api: ApiServer, admin: Client, settings: Settings, store_id: str
) -> None:
    position = stocked_store(admin, store_id, f"R.{store_id}")
    manager = Client(api, api_key(settings, Role.MANAGER, [store_id], "requester"))
    colleague = Client(api, api_key(settings, Role.MANAGER, [store_id], "colleague"))
    auditor = Client(api, api_key(settings, Role.AUDITOR, [store_id], "auditor"))
    direct = admin.get("/v1/reports/movements", store=store_id, min_position=position).json()

    queued = manager.post("/v1/reports", {"kind": "movements", "params": {"store": store_id}})

    assert queued.status_code == 202, queued.text
    report = wait_done(manager, queued.json()["id"])
    assert report["status"] == "done", report
    assert report["rows"] == direct["items"]
    assert auditor.get(f"/v1/reports/{report['id']}").json()["rows"] == direct["items"]
    assert colleague.get(f"/v1/reports/{report['id']}").status_code == 404
    download = manager.get(report["download"].split("?")[0], format="csv")
    assert len(list(csv.DictReader(io.StringIO(download.text)))) == len(direct["items"])
    refused = manager.post("/v1/reports", {"kind": "movements", "params": {"store": "nope"}})
    assert refused.status_code == 403
    invalid = manager.post("/v1/reports", {"kind": "movements", "params": {"colour": 1}})
    assert invalid.status_code == 422


def test_low_stock_lists_items_whose_available_is_below_the_reorder_point(
    admin: Client, settings: Settings, store_id: str
) -> None:
    sku, calm = f"L.{store_id}", f"K.{store_id}"
    stocked_store(admin, store_id, sku)
    stocked_store(admin, store_id, calm)
    reorder = f"/v1/stores/{store_id}/stock"
    command(admin, f"{reorder}/{sku}/reorder-point", {"min": 20}, "PUT")
    position = command(admin, f"{reorder}/{calm}/reorder-point", {"min": 1}, "PUT")

    response = admin.get("/v1/reports/low-stock", store=store_id, min_position=position)

    assert response.status_code == 200, response.text
    assert [(i["sku"], i["available"], i["reorder_min"]) for i in response.json()["items"]] == [
        (sku, "9.5", 20)
    ]


def test_a_report_whose_message_was_lost_is_built_by_the_sweep(
    admin: Client, settings: Settings, store_id: str
) -> None:
    position = stocked_store(admin, store_id, f"Q.{store_id}")
    direct = admin.get("/v1/reports/movements", store=store_id, min_position=position).json()
    report_id = str(uuid.uuid4())
    with psycopg.connect(settings.replica_url) as conn:  # queued, its message never sent
        conn.execute(
            "INSERT INTO report_runs (id, kind, params, requested_by, sent_at)"
            " VALUES (%s, 'movements', %s, 'lost', now() - interval '2 minutes')",
            (report_id, Jsonb({"stores": [store_id]})),
        )

    report = wait_done(admin, report_id)

    assert report["status"] == "done", report
    assert report["rows"] == direct["items"]


def test_a_stock_report_lists_the_stores_levels_once_they_are_projected(
    admin: Client, store_id: str
) -> None:
    position = stocked_store(admin, store_id, f"T.{store_id}")
    projected = admin.get(f"/v1/stores/{store_id}/stock", min_position=position)
    assert projected.status_code == 200, projected.text

    queued = admin.post("/v1/reports", {"kind": "stock", "params": {"store": store_id}})

    report = wait_done(admin, queued.json()["id"])
    assert report["status"] == "done", report
    assert [row["store"] for row in report["rows"]] == [store_id]


def test_the_sweep_deletes_reports_finished_longer_ago_than_the_retention(
    admin: Client, settings: Settings
) -> None:
    """The worker keeps finished reports 30 days (the default), unfinished ones always."""
    ids = {name: str(uuid.uuid4()) for name in ("expired", "failed", "kept", "queued")}
    with psycopg.connect(settings.replica_url) as conn:
        for name, status, age in [
            ("expired", "done", 31),
            ("failed", "failed", 40),
            ("kept", "done", 29),
            ("queued", "queued", 31),
        ]:
            finished = None if status == "queued" else datetime.now(UTC) - timedelta(days=age)
            conn.execute(
                "INSERT INTO report_runs (id, kind, params, status, requested_by, rows,"
                " requested_at, sent_at, finished_at) VALUES (%s, 'stock', '{}', %s, 'old',"
                " '[]', now() - make_interval(days => %s), now(), %s)",
                (ids[name], status, age, finished),
            )

    def status(name: str) -> int:
        return admin.get(f"/v1/reports/{ids[name]}").status_code

    wait_until(lambda: status("expired") == 404 and status("failed") == 404)
    assert status("kept") == 200
    assert status("queued") == 200
    assert admin.get(f"/v1/reports/{ids['expired']}").json()["code"] == "report_not_found"


@pytest.fixture
def large_report(settings: Settings, store_id: str) -> Iterator[str]:
    """A store with 300,000 movement totals, written straight into the read model and
    deleted after (no event made them: the rebuild tests would find them extra)."""
    with psycopg.connect(settings.replica_url) as conn:
        conn.execute(
            "INSERT INTO daily_movements (store, day, sku, type, count, quantity)"
            " SELECT %s, date '2026-01-01' + i %% 365, 'S' || i / 365, 'stock.sold', 1, 1"
            " FROM generate_series(1, 300000) AS i",
            (store_id,),
        )
    try:
        yield store_id
    finally:
        with psycopg.connect(settings.replica_url) as conn:
            conn.execute("DELETE FROM daily_movements WHERE store = %s", (store_id,))


def test_a_download_left_half_read_gives_its_connection_back(
    admin: Client, settings: Settings, large_report: str
) -> None:
    """More abandoned downloads than the API's replica pool holds connections: none keeps
    a connection or a query running on the replica, so reports keep answering."""
    store_id = large_report
    url = f"{admin.base_url}/v1/reports/movements?store={store_id}"
    for _ in range(25):  # the pool holds 20
        with httpx.stream("GET", url, headers=admin.headers, timeout=30) as response:
            assert response.status_code == 200
            assert next(response.iter_raw())  # the first chunk, then leave

    wait_until(lambda: not any(busy for busy in api_backends(settings).values()))
    assert len(api_backends(settings)) <= 20
    answer = admin.get("/v1/reports/movements", store=store_id, sku="S1")
    assert answer.status_code == 200, answer.text
    assert [(i["type"], i["count"]) for i in answer.json()["items"]] == [("stock.sold", 365)]


def api_backends(settings: Settings) -> dict[int, bool]:
    """The API's replica connections: backend pid, and whether it is running a query."""
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT pid, state = 'active' FROM pg_stat_activity"
            " WHERE application_name = 'inventory-replica'"
        ).fetchall()
    return dict(rows)
