"""An integrator's first hour on a real API and worker: catalog and store writes name the
position to read them at, and a till's retry storm is never refused (api.md, issue 20)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, bearer
from tests.e2e.reading import Client

pytestmark = pytest.mark.e2e

API_WORKER = True
CLERK_BUDGET = 30
API_ENV = {"INVENTORY_RATE_LIMIT_CLERK": f"{CLERK_BUDGET}/60"}
REPLAYS = 350


def written(response: httpx.Response, status: int, location: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Location"] == location
    body: dict[str, Any] = response.json()
    assert isinstance(body["position"], int) and body["position"] > 0
    return body


def test_a_product_read_right_after_its_201_waits_for_it_and_is_never_a_404(
    admin: Client,
) -> None:
    misses = 0
    for _ in range(20):
        sku = f"FH-{uuid.uuid4().hex[:8]}"
        created = admin.post("/v1/products", {"sku": sku, "name": "Basmati Rice 5 kg"})
        body = written(created, 201, f"/v1/products/{sku}")

        read = admin.get(created.headers["Location"], min_position=body["position"])

        misses += read.status_code == 404
        assert read.status_code == 200, read.text
        assert read.json()["sku"] == sku
        assert int(read.headers["X-Read-Position"]) >= body["position"]
    print(f"reads right after a product's 201, with min_position: {misses} of 20 were 404")  # noqa: T201


def test_a_product_change_answers_the_position_its_read_waits_on(admin: Client) -> None:
    sku = f"FH-{uuid.uuid4().hex[:8]}"
    admin.post("/v1/products", {"sku": sku, "name": "Old name"})

    changed = admin.post(f"/v1/products/{sku}", {"name": "New name"}, method="PATCH")

    body = written(changed, 200, f"/v1/products/{sku}")
    read = admin.get(f"/v1/products/{sku}", min_position=body["position"])
    assert read.json()["name"] == "New name"


def test_a_store_read_right_after_its_201_finds_it(admin: Client) -> None:
    store = f"fh{uuid.uuid4().hex[:8]}"

    created = admin.post("/v1/stores", {"id": store, "name": "Lahore 1"})

    body = written(created, 201, f"/v1/stores/{store}")
    read = admin.get(created.headers["Location"], min_position=body["position"])
    assert read.status_code == 200 and read.json()["name"] == "Lahore 1"


def test_a_replayed_catalog_write_answers_the_same_body_and_location(
    api: ApiServer, admin_key: str
) -> None:
    sku = f"FH-{uuid.uuid4().hex[:8]}"
    headers = {**bearer(admin_key), "Idempotency-Key": uuid.uuid4().hex}
    url = f"{api.base_url}/v1/products"

    first = httpx.post(url, json={"sku": sku, "name": "Tea"}, headers=headers, timeout=30)
    again = httpx.post(url, json={"sku": sku, "name": "Tea"}, headers=headers, timeout=30)

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["Location"] == first.headers["Location"] == f"/v1/products/{sku}"


async def test_a_tills_retry_storm_is_answered_from_the_record_without_spending_budget(
    api: ApiServer, admin: Client, settings: Settings
) -> None:
    store, sku = f"fh{uuid.uuid4().hex[:8]}", f"FH-{uuid.uuid4().hex[:8]}"
    admin.post("/v1/stores", {"id": store, "name": "Till store"})
    admin.post("/v1/products", {"sku": sku, "name": "Rice"})
    admin.command(f"/v1/stores/{store}/receipts", {"lines": [{"sku": sku, "quantity": 100}]})
    clerk = api_key(settings, Role.CLERK, [store], "till")
    headers = {**bearer(clerk), "Idempotency-Key": f"sale-{uuid.uuid4().hex}"}
    sale = {"sale_id": uuid.uuid4().hex, "lines": [{"sku": sku, "quantity": 1}]}
    url = f"{api.base_url}/v1/stores/{store}/sales"
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        first = await client.post(url, json=sale)
        assert first.status_code == 201, first.text
        storm = await asyncio.gather(*(client.post(url, json=sale) for _ in range(REPLAYS)))
        after = await client.get(f"{api.base_url}/v1/me")

    refused = sum(r.status_code == 429 for r in storm)
    replayed = sum(
        r.status_code == 201 and r.headers.get("Idempotent-Replayed") == "true" for r in storm
    )
    figure = f"{replayed} of {REPLAYS} replays answered from the record, {refused} got 429"
    print(f"retry storm under a clerk budget of {CLERK_BUDGET}/60: {figure}")  # noqa: T201
    assert refused == 0 and replayed == REPLAYS
    assert all(r.content == first.content for r in storm)
    assert not any("Retry-After" in r.headers for r in storm)
    # The storm spent nothing: the sale and this call are all the budget has counted.
    assert after.status_code == 200
    remaining = int(after.headers["RateLimit"].split("r=")[1].split(";")[0])
    assert remaining >= CLERK_BUDGET - 2
    level = admin.get(f"/v1/stores/{store}/stock/{sku}", min_position=first.json()["position"])
    assert level.json()["on_hand"] == 99


async def test_fresh_commands_over_budget_are_still_refused(
    api: ApiServer, admin: Client, settings: Settings
) -> None:
    store = f"fh{uuid.uuid4().hex[:8]}"
    admin.post("/v1/stores", {"id": store, "name": "Busy store"})
    clerk = api_key(settings, Role.CLERK, [store], "busy till")
    url = f"{api.base_url}/v1/stores/{store}/sales"
    async with httpx.AsyncClient(timeout=60, headers=bearer(clerk)) as client:
        calls = [
            client.post(
                url,
                json={"sale_id": str(i), "lines": [{"sku": "NONE", "quantity": 1}]},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            for i in range(CLERK_BUDGET + 10)
        ]
        answers = await asyncio.gather(*calls)

    assert sum(r.status_code == 429 for r in answers) == 10


def test_the_favicon_and_the_web_app_manifest_are_served_locally(api: ApiServer) -> None:
    icon = httpx.get(f"{api.base_url}/favicon.ico", timeout=30)
    manifest = httpx.get(f"{api.base_url}/manifest.webmanifest", timeout=30)

    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content.startswith(b"\x00\x00\x01\x00")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["start_url"] == "/" and body["icons"]
    for entry in body["icons"]:
        assert entry["src"].startswith("/")  # our own origin, no CDN
        image = httpx.get(f"{api.base_url}{entry['src']}", timeout=30)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_the_reference_tells_who_may_call_and_how_to_read_ones_writes(api: ApiServer) -> None:
    document = httpx.get(f"{api.base_url}/schema/openapi.json", timeout=30).json()

    sale = document["paths"]["/v1/stores/{store}/sales"]["post"]
    assert "**Who may call it:** admin, manager, clerk" in sale["description"]
    assert "min_position" in sale["description"]
    example = sale["responses"]["201"]["content"]["application/json"]["example"]
    assert example["position"] > 0
    assert "min_position" in document["info"]["description"]
    assert 'href="/favicon.ico"' in httpx.get(f"{api.base_url}/docs", timeout=30).text
