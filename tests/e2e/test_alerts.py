"""Alerts with their detail and their acknowledgement, on a real API and worker: who may
acknowledge, what the list shows, and that a rebuild of the read side keeps it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, bearer
from tests.e2e.processes import inventory
from tests.e2e.reading import Client

pytestmark = pytest.mark.e2e

API_WORKER = True


class Shop:
    """A store with a product below its reorder point: one open `low_stock` alert."""

    def __init__(self, api: ApiServer, admin: Client, settings: Settings) -> None:
        self.api, self.admin = api, admin
        self.store, self.sku = f"al{uuid.uuid4().hex[:8]}", f"AL-{uuid.uuid4().hex[:8]}"
        admin.post("/v1/stores", {"id": self.store, "name": "Lahore 1"})
        admin.post("/v1/products", {"sku": self.sku, "name": "Basmati Rice 5 kg", "unit": "bag"})
        admin.command(
            f"/v1/stores/{self.store}/receipts", {"lines": [{"sku": self.sku, "quantity": 7}]}
        )
        reorder = admin.post(
            f"/v1/stores/{self.store}/stock/{self.sku}/reorder-point", {"min": 20}, method="PUT"
        )
        assert reorder.status_code in (200, 201), reorder.text
        self.position: int = reorder.json()["position"]
        self.manager = api_key(settings, Role.MANAGER, [self.store], "alerts manager")

    def alerts(self, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
        query = {"store": self.store, "min_position": self.position, **params}
        answer = httpx.get(
            f"{self.api.base_url}/v1/alerts",
            params=query,
            headers=bearer(key) if key else self.admin.headers,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def alert(self) -> dict[str, Any]:
        (found,) = self.alerts()
        return found

    def acknowledge(self, key: str, alert_id: object, body: Any = None) -> httpx.Response:
        return httpx.post(
            f"{self.api.base_url}/v1/alerts/{alert_id}/acknowledge",
            json={} if body is None else body,
            headers=bearer(key),
            timeout=30,
        )


@pytest.fixture
def shop(api: ApiServer, admin: Client, settings: Settings) -> Shop:
    return Shop(api, admin, settings)


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_an_alert_reads_with_enough_to_act_on(shop: Shop) -> None:
    alert = shop.alert()

    assert {k: alert[k] for k in ("kind", "store", "sku", "name", "unit")} == {
        "kind": "low_stock",
        "store": shop.store,
        "sku": shop.sku,
        "name": "Basmati Rice 5 kg",
        "unit": "bag",
    }
    assert alert["available"] == 7 and alert["reorder_min"] == 20
    assert alert["opened_at"] and alert["acknowledged_at"] is None
    assert alert["acknowledged_by"] is None and alert["note"] is None


def test_a_manager_of_the_store_acknowledges_with_a_note(shop: Shop) -> None:
    alert = shop.alert()

    answer = shop.acknowledge(shop.manager, alert["id"], {"note": "Supplier called, Tuesday"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == alert["id"] and body["note"] == "Supplier called, Tuesday"
    assert body["acknowledged_by"] == "alerts manager" and body["acknowledged_at"]
    shop.position = body["position"]
    (acknowledged,) = shop.alerts(state="acknowledged")
    assert acknowledged["note"] == "Supplier called, Tuesday"
    assert acknowledged["acknowledged_at"] is not None
    assert shop.alerts(state="open") == []
    assert len(shop.alerts(state="all")) == len(shop.alerts()) == 1


def test_acknowledging_twice_keeps_the_first_acknowledgement(shop: Shop) -> None:
    alert = shop.alert()
    first = shop.acknowledge(shop.manager, alert["id"], {"note": "first"}).json()

    again = shop.acknowledge(shop.admin.headers["Authorization"][7:], alert["id"], {"note": "2"})

    assert again.status_code == 200, again.text
    assert again.json()["note"] == "first"
    assert again.json()["acknowledged_at"] == first["acknowledged_at"]


def test_only_managers_of_the_store_and_admins_may_acknowledge(
    shop: Shop, settings: Settings
) -> None:
    alert_id = shop.alert()["id"]
    other = f"al{uuid.uuid4().hex[:8]}"
    shop.admin.post("/v1/stores", {"id": other, "name": "Karachi 2"})
    for role, stores in (
        (Role.CLERK, [shop.store]),
        (Role.VIEWER, [shop.store]),
        (Role.AUDITOR, ["*"]),
        (Role.MANAGER, [other]),
    ):
        key = api_key(settings, role, stores, f"not allowed {role}")
        problem(shop.acknowledge(key, alert_id, {"note": "mine"}), 403, "forbidden")
    assert shop.alert()["acknowledged_at"] is None
    elsewhere = api_key(settings, Role.MANAGER, [other], "elsewhere")
    assert shop.alerts(elsewhere, store=other) == []


def test_an_admin_may_acknowledge_any_stores_alert(shop: Shop) -> None:
    admin_key = shop.admin.headers["Authorization"][7:]

    answer = shop.acknowledge(admin_key, shop.alert()["id"])

    assert answer.status_code == 200 and answer.json()["note"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"note": "x" * 10**6}, 422, "validation_failed"),
        ({"note": "nul \u0000 inside"}, 422, "validation_failed"),
        ({"note": ""}, 422, "validation_failed"),
        ({"note": 7}, 422, "validation_failed"),
        ({"comment": "hi"}, 422, "validation_failed"),
        ([], 422, "validation_failed"),
    ],
)
def test_bad_notes_are_refused_and_acknowledge_nothing(
    shop: Shop, body: Any, status: int, code: str
) -> None:
    alert_id = shop.alert()["id"]

    problem(shop.acknowledge(shop.manager, alert_id, body), status, code)

    assert shop.alert()["acknowledged_at"] is None


def test_unknown_alerts_are_404_and_bad_ids_never_500(shop: Shop) -> None:
    problem(shop.acknowledge(shop.manager, 2**62), 404, "alert_not_found")
    for bad in ("0", "-1", str(2**64), "abc", "1.5"):
        answer = shop.acknowledge(shop.manager, bad)
        assert 400 <= answer.status_code < 500, (bad, answer.text)


def test_a_bad_state_is_400_naming_the_allowed_values(shop: Shop) -> None:
    answer = httpx.get(
        f"{shop.api.base_url}/v1/alerts",
        params={"state": "closed"},
        headers=shop.admin.headers,
        timeout=30,
    )
    assert 400 <= answer.status_code < 500
    assert "acknowledged" in answer.text


def test_a_closed_alert_cannot_be_acknowledged(shop: Shop) -> None:
    alert_id = shop.alert()["id"]
    shop.position = shop.admin.command(
        f"/v1/stores/{shop.store}/receipts", {"lines": [{"sku": shop.sku, "quantity": 50}]}
    )
    assert shop.alerts() == []

    problem(shop.acknowledge(shop.manager, alert_id), 409, "alert_closed")


def test_an_acknowledgement_survives_a_rebuild_of_the_alerts(
    shop: Shop, server_env: dict[str, str]
) -> None:
    before = shop.alert()
    shop.position = shop.acknowledge(shop.manager, before["id"], {"note": "kept"}).json()[
        "position"
    ]

    rebuilt = inventory("projections", "rebuild", "stock", env=server_env, timeout=300)

    assert rebuilt.returncode == 0, rebuilt.stderr
    after = shop.alert()
    assert after["note"] == "kept" and after["acknowledged_by"] == "alerts manager"
    assert after["acknowledged_at"] == shop.alerts(state="acknowledged")[0]["acknowledged_at"]
