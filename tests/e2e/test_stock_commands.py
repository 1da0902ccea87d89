"""Stock commands over HTTP against a running API process (and worker, for expiry)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import ApiServer
from tests.e2e.reading import Pos, start_worker, wait_until

pytestmark = pytest.mark.e2e


def store_with(
    pos: Pos, store: str, stock: dict[str, Any], *, at: datetime | None = None, decimals: int = 0
) -> None:
    """Open `store` and receive `stock` (SKU -> quantity), registering unknown SKUs."""
    assert pos.post("/v1/stores", {"id": store, "name": store}, key=None).status_code == 201
    for sku in stock:
        created = pos.post(
            "/v1/products", {"sku": sku, "name": f"Product {sku}", "decimals": decimals}, key=None
        )
        assert created.status_code in (201, 409), created.text
    lines = [{"sku": sku, "quantity": quantity} for sku, quantity in stock.items() if quantity]
    if lines:
        body: dict[str, Any] = {"lines": lines}
        if at is not None:
            body["occurred_at"] = at.isoformat()
        response = pos.post(f"/v1/stores/{store}/receipts", body)
        assert response.status_code == 201, response.text


def sku_of(store: str, name: str) -> str:
    return f"{name}.{store}"


def sold_events(settings: Settings, store: str, sku: str) -> int:
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE stream = %s AND type = 'stock.sold'",
            (f"stock-{store}-{sku}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def level(settings: Settings, store: str, sku: str) -> dict[str, Any]:
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute(
            "SELECT state FROM streams WHERE stream = %s", (f"stock-{store}-{sku}",)
        ).fetchone()
    assert row is not None
    state: dict[str, Any] = row[0]
    return state


async def test_thirty_two_clients_selling_twenty_units_with_retries_sell_exactly_twenty(
    pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = sku_of(store_id, "HOT")
    store_with(pos, store_id, {sku: 20})

    async def client(number: int, http: httpx.AsyncClient) -> list[httpx.Response]:
        body = {"sale_id": f"sale-{number}", "lines": [{"sku": sku, "quantity": 1}]}
        headers = {**pos.headers, "Idempotency-Key": f"{store_id}-{number}"}
        path = f"{pos.base_url}/v1/stores/{store_id}/sales"
        # The first request and three retries with its key, all in flight together.
        return list(
            await asyncio.gather(*(http.post(path, json=body, headers=headers) for _ in range(4)))
        )

    async with httpx.AsyncClient(timeout=60) as http:
        answers = await asyncio.gather(*(client(n, http) for n in range(32)))

    firsts = sorted(attempts[0].status_code for attempts in answers)
    assert firsts.count(201) == 20
    assert firsts.count(409) == 12
    for attempts in answers:
        # Every retry answers exactly what the first answered.
        assert len({(a.status_code, a.content) for a in attempts}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in attempts) == 3
    refused = [a[0].json() for a in answers if a[0].status_code == 409]
    assert {problem["code"] for problem in refused} == {"insufficient_stock"}
    assert refused[0]["errors"] == [{"sku": sku, "available": 0, "requested": 1}]
    assert sold_events(settings, store_id, sku) == 20
    assert level(settings, store_id, sku)["on_hand"] in (0, "0")


def test_a_sale_whose_third_line_is_short_appends_nothing(
    pos: Pos, settings: Settings, store_id: str
) -> None:
    a, b, c = (sku_of(store_id, name) for name in "ABC")
    store_with(pos, store_id, {a: 5, b: 5, c: 1})
    lines = [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}, {"sku": c, "quantity": 2}]

    response = pos.post(f"/v1/stores/{store_id}/sales", {"sale_id": "short", "lines": lines})

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"sku": c, "available": 1, "requested": 2}]
    assert [sold_events(settings, store_id, sku) for sku in (a, b, c)] == [0, 0, 0]


def test_a_late_offline_sale_before_a_count_is_absorbed_and_one_after_it_is_not(
    pos: Pos, store_id: str
) -> None:
    sku = sku_of(store_id, "LATE")
    counted_at = datetime.now(UTC) - timedelta(hours=1)
    store_with(pos, store_id, {sku: 10}, at=counted_at - timedelta(hours=1))
    count = {"lines": [{"sku": sku, "counted": 8}], "occurred_at": counted_at.isoformat()}
    assert pos.post(f"/v1/stores/{store_id}/counts", count).json()["levels"][0]["on_hand"] == 8

    def offline_sale(sale_id: str, at: datetime) -> dict[str, Any]:
        body = {
            "sale_id": sale_id,
            "lines": [{"sku": sku, "quantity": 3}],
            "offline": True,
            "occurred_at": at.isoformat(),
        }
        response = pos.post(f"/v1/stores/{store_id}/sales", body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    before = offline_sale("before", counted_at - timedelta(minutes=5))
    assert before["levels"][0]["on_hand"] == 8
    assert [event["type"] for event in before["events"]] == ["sale.recorded", "stock.sold"] or {
        event["type"] for event in before["events"]
    } == {"sale.recorded", "stock.sold"}
    after = offline_sale("after", counted_at + timedelta(minutes=5))
    assert after["levels"][0]["on_hand"] == 5


def test_a_transfer_dispatched_half_received_and_cancelled_is_right_at_every_step(
    pos: Pos, store_id: str
) -> None:
    source, destination = store_id, f"{store_id}b"
    sku = sku_of(store_id, "TR")
    store_with(pos, source, {sku: 10})
    store_with(pos, destination, {})
    transfer = f"t{uuid.uuid4().hex[:8]}"

    def levels(response: httpx.Response) -> dict[str, tuple[int, int, int]]:
        assert response.status_code == 201, response.text
        return {
            item["store"]: (item["on_hand"], item["in_transit_in"], item["in_transit_out"])
            for item in response.json()["levels"]
        }

    dispatched = pos.post(
        "/v1/transfers",
        {
            "transfer_id": transfer,
            "from_store": source,
            "to_store": destination,
            "lines": [{"sku": sku, "quantity": 6}],
        },
    )
    assert levels(dispatched) == {source: (4, 0, 6), destination: (0, 6, 0)}

    half = pos.post(f"/v1/transfers/{transfer}/receive", {"lines": [{"sku": sku, "quantity": 3}]})
    assert levels(half) == {source: (4, 0, 3), destination: (3, 3, 0)}

    cancelled = pos.post(f"/v1/transfers/{transfer}/cancel", {})
    assert levels(cancelled) == {source: (7, 0, 0), destination: (3, 0, 0)}

    again = pos.post(f"/v1/transfers/{transfer}/cancel", {})
    assert (again.status_code, again.json()["code"]) == (409, "transfer_not_open")


def test_the_same_key_with_another_body_is_refused_and_nothing_is_appended(
    pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = sku_of(store_id, "KEY")
    store_with(pos, store_id, {sku: 5})
    path = f"/v1/stores/{store_id}/sales"
    first = pos.post(path, {"sale_id": "k1", "lines": [{"sku": sku, "quantity": 1}]}, key="same")
    other = pos.post(path, {"sale_id": "k2", "lines": [{"sku": sku, "quantity": 2}]}, key="same")

    assert first.status_code == 201
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert sold_events(settings, store_id, sku) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"sale_id": "x", "lines": [', 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (
            b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": 1}], "extra": 1}',
            422,
            "validation_failed",
        ),
        (b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": true}]}', 422, "validation_failed"),
        (
            b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": "1e400"}]}',
            422,
            "validation_failed",
        ),
        (b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": 1.5}]}', 422, "validation_failed"),
        (b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": "NaN"}]}', 422, "validation_failed"),
        (b'{"sale_id": "x", "lines": []}', 422, "validation_failed"),
        (
            b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": 1},'
            b' {"sku": "A", "quantity": 2}]}',
            422,
            "validation_failed",
        ),
        (b'{"sale_id": "x", "lines": [{"sku": "NOPE", "quantity": 1}]}', 404, "product_not_found"),
        (
            b'{"sale_id": "x", "lines": [{"sku": "A", "quantity": 1}], "occurred_at": "yesterday"}',
            422,
            "validation_failed",
        ),
    ],
)
def test_bad_input_is_a_clear_problem_never_a_500(
    pos: Pos, store_id: str, body: bytes, status: int, code: str
) -> None:
    sku = sku_of(store_id, "A")
    store_with(pos, store_id, {sku: 5})

    response = pos.raw(
        f"/v1/stores/{store_id}/sales", body.replace(b'"A"', json.dumps(sku).encode())
    )

    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_command_without_an_idempotency_key_a_huge_body_or_an_unknown_store_is_refused(
    pos: Pos, store_id: str
) -> None:
    sale = {"sale_id": "x", "lines": [{"sku": "A", "quantity": 1}]}
    missing = pos.post(f"/v1/stores/{store_id}/sales", sale, key=None)
    huge = pos.raw(f"/v1/stores/{store_id}/sales", b'{"note": "' + b"x" * (2 << 20) + b'"}')
    unknown = pos.post(f"/v1/stores/{store_id}/sales", sale)

    assert (missing.status_code, missing.json()["code"]) == (400, "idempotency_key_missing")
    assert (huge.status_code, huge.json()["code"]) == (413, "body_too_large")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "store_not_found")


def test_too_many_lines_and_out_of_range_quantities_are_validation_failures(
    pos: Pos, store_id: str
) -> None:
    sku = sku_of(store_id, "BIG")
    store_with(pos, store_id, {sku: 1})
    many = {"lines": [{"sku": f"S{n}", "quantity": 1} for n in range(1001)]}
    overflow = {"lines": [{"sku": sku, "quantity": "1000000000001"}]}

    for body in (many, overflow):
        response = pos.post(f"/v1/stores/{store_id}/receipts", body)
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")


def test_a_reservation_expires_at_its_time_even_across_a_worker_restart(  # noqa: PLR0917 - fixtures
    pos: Pos,
    api: ApiServer,
    server_env: dict[str, str],
    settings: Settings,
    store_id: str,
    tmp_path: Path,
) -> None:
    sku = sku_of(store_id, "RES")
    store_with(pos, store_id, {sku: 5})
    namespace = api.env["INVENTORY_REDIS_NAMESPACE"]
    first = start_worker(server_env, namespace, tmp_path / "worker-1.log")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    body = {
        "reservation_id": "r1",
        "lines": [{"sku": sku, "quantity": 2}],
        "expires_at": expires.isoformat(),
    }
    reserved = pos.post(f"/v1/stores/{store_id}/reservations", body)
    assert reserved.json()["levels"][0]["available"] == 3, reserved.text
    # The worker that holds the delayed message dies before it is due.
    first.kill()
    first.wait(10)

    second = start_worker(server_env, namespace, tmp_path / "worker-2.log")
    try:
        wait_until(lambda: float(level(settings, store_id, sku)["reserved"]) == 0)
    finally:
        second.terminate()
        second.wait(30)
    released = pos.post(f"/v1/stores/{store_id}/reservations/r1/release", {})
    assert (released.status_code, released.json()["code"]) == (409, "reservation_not_active")
