"""Availability at business time over HTTP (rule 4) and returns after their sale (rule 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key
from tests.e2e.reading import Pos
from tests.e2e.test_stock_commands import level, sku_of, store_with

pytestmark = pytest.mark.e2e


def ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def counted_store(pos: Pos, store: str, sku: str) -> None:
    """7 units received two hours ago and counted an hour ago."""
    store_with(pos, store, {sku: 7}, at=datetime.now(UTC) - timedelta(minutes=120))
    counted = pos.post(
        f"/v1/stores/{store}/counts",
        {"lines": [{"sku": sku, "counted": 7}], "occurred_at": ago(60)},
    )
    assert counted.status_code == 201, counted.text


def person(api: ApiServer, settings: Settings, role: Role, store: str) -> Pos:
    return Pos(api, api_key(settings, role, [store], f"{role.value} of {store}"))


def test_a_backdated_sale_before_a_count_cannot_create_stock_through_a_return(
    api: ApiServer, pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = sku_of(store_id, "A")
    counted_store(pos, store_id, sku)
    clerk = person(api, settings, Role.CLERK, store_id)
    sale = {"sale_id": "s-50", "lines": [{"sku": sku, "quantity": 50}], "occurred_at": ago(90)}
    refused = clerk.post(f"/v1/stores/{store_id}/sales", sale)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "insufficient_stock"
    assert [(e["sku"], e["available"], e["requested"]) for e in problem["errors"]] == [(sku, 7, 50)]
    back = clerk.post(
        f"/v1/stores/{store_id}/returns",
        {"sale_id": "s-50", "lines": [{"sku": sku, "quantity": 50}]},
    )
    assert back.status_code == 404, back.text
    assert level(settings, store_id, sku)["on_hand"] == "7"


def test_a_return_dated_before_its_sale_is_a_422(
    api: ApiServer, pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = sku_of(store_id, "A")
    counted_store(pos, store_id, sku)
    clerk = person(api, settings, Role.CLERK, store_id)
    sale = {"sale_id": "s-2", "lines": [{"sku": sku, "quantity": 2}], "occurred_at": ago(30)}
    assert clerk.post(f"/v1/stores/{store_id}/sales", sale).status_code == 201
    early = {"sale_id": "s-2", "lines": [{"sku": sku, "quantity": 2}], "occurred_at": ago(31)}
    refused = clerk.post(f"/v1/stores/{store_id}/returns", early)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "return_before_sale"


def test_only_a_manager_takes_a_return_against_an_offline_oversale(
    api: ApiServer, pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = sku_of(store_id, "A")
    counted_store(pos, store_id, sku)
    clerk = person(api, settings, Role.CLERK, store_id)
    manager = person(api, settings, Role.MANAGER, store_id)
    sale = {
        "sale_id": "s-off",
        "lines": [{"sku": sku, "quantity": 50}],
        "occurred_at": ago(90),
        "offline": True,
    }
    assert clerk.post(f"/v1/stores/{store_id}/sales", sale).status_code == 201
    back = {"sale_id": "s-off", "lines": [{"sku": sku, "quantity": 5}]}
    refused = clerk.post(f"/v1/stores/{store_id}/returns", back)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "return_needs_manager"
    assert manager.post(f"/v1/stores/{store_id}/returns", back).status_code == 201
