"""A command that reaches a primary gone read-only is a 503 with Retry-After, not a 500,
writes nothing, and succeeds when resent with its key once the primary writes again."""

from __future__ import annotations

import uuid

import pytest

from inventory.runtime.settings import Settings
from tests.e2e.reading import Pos, events_count
from tests.e2e.test_stock_commands import sku_of, sold_events, store_with
from tests.read_only_server import read_only_server

pytestmark = pytest.mark.e2e


def test_a_sale_on_a_read_only_primary_is_a_503_then_lands_once_when_resent(
    pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = sku_of(store_id, "A")
    store_with(pos, store_id, {sku: 5})
    sale = {"sale_id": "s-1", "lines": [{"sku": sku, "quantity": 2}]}
    key = uuid.uuid4().hex
    before = events_count(settings)

    with read_only_server(settings.primary_admin_url):
        refused = pos.post(f"/v1/stores/{store_id}/sales", sale, key=key)
        written = events_count(settings)
    resent = pos.post(f"/v1/stores/{store_id}/sales", sale, key=key)
    again = pos.post(f"/v1/stores/{store_id}/sales", sale, key=key)

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "service_unavailable"
    assert refused.headers["Retry-After"] == "1"
    assert written == before
    assert resent.status_code == 201, resent.text
    assert again.json() == resent.json()
    assert sold_events(settings, store_id, sku) == 1
