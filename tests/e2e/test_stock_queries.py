"""Stock queries over HTTP against a running API and worker: read-your-writes, shapes,
scope, the bitemporal level, and 404s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key
from tests.e2e.reading import Client

pytestmark = pytest.mark.e2e
API_WORKER = True  # the conftest's API process runs with a worker: reads need projections


def setup_store(admin: Client, store: str, skus: dict[str, int]) -> int:
    """Open `store`, register `skus` (SKU -> decimals), receive 10 of each; the position."""
    assert admin.post("/v1/stores", {"id": store, "name": f"Store {store}"}).status_code == 201
    for sku, decimals in skus.items():
        body = {"sku": sku, "name": f"Gadget {sku}", "decimals": decimals, "barcode": f"b{sku}"}
        assert admin.post("/v1/products", body).status_code in (201, 409)
    lines = [{"sku": sku, "quantity": 10} for sku in skus]
    return admin.command(f"/v1/stores/{store}/receipts", {"lines": lines})


def test_a_client_that_writes_then_reads_with_min_position_sees_its_write(
    admin: Client, store_id: str
) -> None:
    sku = f"RYW-{store_id}"
    setup_store(admin, store_id, {sku: 0})
    for n in range(25):
        sale = {"sale_id": f"s{n}", "lines": [{"sku": sku, "quantity": 1}], "offline": True}
        position = admin.command(f"/v1/stores/{store_id}/sales", sale)

        read = admin.get(f"/v1/stores/{store_id}/stock/{sku}", min_position=position)

        assert read.status_code == 200, read.text
        assert read.json()["on_hand"] == 10 - (n + 1)
        assert int(read.headers["X-Read-Position"]) >= position


def test_lists_pages_and_quantities_follow_the_products_decimals(
    admin: Client, store_id: str
) -> None:
    whole, fine = f"W-{store_id}", f"F-{store_id}"
    position = setup_store(admin, store_id, {whole: 0, fine: 2})
    url = f"{admin.base_url}/v1/stores/{store_id}/stock/{whole}/reorder-point"
    put = httpx.put(url, json={"min": 20}, headers={**admin.headers, "Idempotency-Key": "r1"})
    position = max(position, put.json()["position"])

    first = admin.get(f"/v1/stores/{store_id}/stock", limit=1, min_position=position).json()
    second = admin.get(f"/v1/stores/{store_id}/stock", limit=1, cursor=first["next_cursor"])
    items = first["items"] + second.json()["items"]

    assert [i["sku"] for i in items] == sorted([whole, fine])
    by_sku = {i["sku"]: i for i in items}
    assert by_sku[whole]["on_hand"] == 10 and by_sku[whole]["reorder_min"] == 20
    assert by_sku[fine]["on_hand"] == "10.00"
    assert by_sku[whole]["name"] == f"Gadget {whole}"
    below = admin.get(f"/v1/stores/{store_id}/stock", below_reorder="true").json()["items"]
    assert [i["sku"] for i in below] == [whole]
    prefix = admin.get(f"/v1/stores/{store_id}/stock", sku="F-").json()["items"]
    assert [i["sku"] for i in prefix] == [fine]
    alerts = admin.get("/v1/alerts", store=store_id, kind="low_stock").json()["items"]
    assert [(a["sku"], a["kind"]) for a in alerts] == [(whole, "low_stock")]
    ledger = admin.get(f"/v1/stores/{store_id}/stock/{fine}/ledger").json()["items"]
    assert [(e["type"], e["delta"], e["on_hand_after"]) for e in ledger] == [
        ("stock.received", "10.00", "10.00")
    ]
    hits = admin.get("/v1/search", q=fine.lower(), store=store_id).json()["items"]
    assert hits[0]["sku"] == fine and hits[0]["levels"][0]["available"] == "10.00"
    assert admin.get(f"/v1/products/{fine}").json()["decimals"] == 2
    assert admin.get(f"/v1/stores/{store_id}").json()["id"] == store_id


def test_a_level_as_of_a_past_time_and_known_at_a_past_time(admin: Client, store_id: str) -> None:
    sku = f"T-{store_id}"
    setup_store(admin, store_id, {sku: 0})
    count_at = datetime.now(UTC) - timedelta(minutes=30)
    count = {"lines": [{"sku": sku, "counted": 4}], "occurred_at": count_at.isoformat()}
    admin.command(f"/v1/stores/{store_id}/counts", count)
    known = datetime.now(UTC)
    late = {
        "sale_id": "late",
        "lines": [{"sku": sku, "quantity": 1}],
        "offline": True,
        "occurred_at": (count_at + timedelta(minutes=5)).isoformat(),
    }
    position = admin.command(f"/v1/stores/{store_id}/sales", late)
    path = f"/v1/stores/{store_id}/stock/{sku}"

    now = admin.get(path, min_position=position).json()
    before_count = admin.get(path, as_of=(count_at - timedelta(seconds=1)).isoformat()).json()
    believed = admin.get(path, known_at=known.isoformat()).json()

    assert now["on_hand"] == 4 + 10 - 1  # the count, the receipt dated after it, the sale
    assert before_count["on_hand"] == 0  # nothing had happened yet
    assert believed["on_hand"] == 14  # what we knew before the late sale was recorded


def test_unknown_stores_and_skus_are_404_and_other_stores_are_403(
    admin: Client, api: ApiServer, settings: Settings, store_id: str
) -> None:
    sku = f"N-{store_id}"
    position = setup_store(admin, store_id, {sku: 0})
    scoped = Client(api, api_key(settings, Role.VIEWER, [store_id], "scoped"))

    missing_store = admin.get("/v1/stores/nowhere/stock", min_position=position)
    missing_sku = admin.get(f"/v1/stores/{store_id}/stock/NOPE-{store_id}")
    everywhere = scoped.get(f"/v1/stock/{sku}").json()["items"]
    forbidden = scoped.get("/v1/stores/elsewhere/stock")

    assert (missing_store.status_code, missing_store.json()["code"]) == (404, "store_not_found")
    assert (missing_sku.status_code, missing_sku.json()["code"]) == (404, "product_not_found")
    assert [level["store"] for level in everywhere] == [store_id]
    assert forbidden.status_code == 403


def test_a_read_that_cannot_reach_its_position_is_503_with_retry_after(admin: Client) -> None:
    response = admin.get("/v1/stores", min_position=10**15)

    assert response.status_code == 503
    assert response.json()["code"] == "read_model_lagging"
    assert "Retry-After" in response.headers
