"""`min_position` on the event history waits for the event to reach the replica's events
copy, which the history reads, and never for a projector: a store whose projection is
stalled (here: no worker projects at all) still has its history read back at once."""

from __future__ import annotations

import uuid

import pytest

from inventory.runtime.settings import Settings
from tests.e2e.reading import Client, replicated, wait_until

pytestmark = pytest.mark.e2e
# API_WORKER stays False: nothing projects, as for a store whose projection stalled.


def test_the_history_answers_min_position_once_the_event_is_replicated(
    admin: Client, settings: Settings
) -> None:
    store, sku = f"h{uuid.uuid4().hex[:8]}", f"H{uuid.uuid4().hex[:8]}"
    assert admin.post("/v1/stores", {"id": store, "name": store}).status_code == 201
    assert admin.post("/v1/products", {"sku": sku, "name": sku}).status_code == 201
    received = admin.post(f"/v1/stores/{store}/receipts", {"lines": [{"sku": sku, "quantity": 3}]})
    assert received.status_code == 201, received.text
    position = received.json()["position"]
    wait_until(lambda: replicated(settings.replica_url, [position]))

    events = admin.get("/v1/events", store=store, min_position=position)
    stream = admin.get(f"/v1/streams/stock-{store}-{sku}/events", min_position=position)
    # The read models do wait for their projector, which never comes here.
    stock = admin.get(f"/v1/stores/{store}/stock", min_position=position)

    assert events.status_code == 200, events.text
    assert events.json()["items"][-1]["position"] == position  # after the store's opening
    assert int(events.headers["X-Read-Position"]) >= position  # how far the copy reaches
    assert stream.status_code == 200, stream.text
    assert [e["position"] for e in stream.json()["items"]] == [position]
    assert stock.status_code == 503 and stock.json()["code"] == "read_model_lagging"


def test_the_history_still_answers_503_for_an_event_not_yet_replicated(admin: Client) -> None:
    never = 2**62  # a position no primary of this test reaches

    response = admin.get("/v1/events", min_position=never)

    assert response.status_code == 503
    assert response.json()["code"] == "read_model_lagging"
    assert response.headers["Retry-After"] == "1"
