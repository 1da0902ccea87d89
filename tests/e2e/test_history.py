"""Event history over HTTP: `GET /v1/events` and `GET /v1/streams/{stream}/events`."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import hypothesis
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key
from tests.e2e.reading import (
    Client,
    primary_positions,
    replicated,
    wait_until,
)

pytestmark = pytest.mark.e2e
API_WORKER = True  # the conftest's API process runs with a worker: the history is read back


def open_stores(admin: Client, stores: list[str], sku: str) -> None:
    for store in stores:
        assert admin.post("/v1/stores", {"id": store, "name": store}).status_code == 201
    created = admin.post("/v1/products", {"sku": sku, "name": sku})
    assert created.status_code == 201, created.text


def receive(admin: Client, store: str, sku: str, quantity: int = 1) -> dict[str, Any]:
    response = admin.post(
        f"/v1/stores/{store}/receipts", {"lines": [{"sku": sku, "quantity": quantity}]}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def head_seq(replica_url: str) -> int:
    with psycopg.connect(replica_url) as conn:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return int(row[0]) if row else 0


def replica_seqs(replica_url: str, after: int) -> list[int]:
    with psycopg.connect(replica_url) as conn:
        rows = conn.execute("SELECT seq FROM events WHERE seq > %s ORDER BY seq", (after,))
        return [row[0] for row in rows.fetchall()]


def drain(client: Client, after: int, **filters: Any) -> tuple[list[dict[str, Any]], int]:
    """Page from `after` until an empty page; the items and the last seq."""
    items: list[dict[str, Any]] = []
    while True:
        response = client.get("/v1/events", after=after, limit=7, **filters)
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["items"]:
            assert page["next_cursor"] is None
            return items, after
        items += page["items"]
        after = int(page["next_cursor"])


def test_paging_after_a_seq_while_writers_append_returns_every_event_once_in_seq_order(
    admin: Client, settings: Settings, store_id: str
) -> None:
    stores, sku = [store_id, f"{store_id}b"], f"H.{store_id}"
    start = head_seq(settings.replica_url)
    open_stores(admin, stores, sku)
    stop = threading.Event()

    def write(number: int) -> None:
        while not stop.is_set():
            receive(admin, stores[number % 2], sku)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    seen: list[dict[str, Any]] = []
    after, deadline = start, time.monotonic() + 4
    while time.monotonic() < deadline:
        page, after = drain(admin, after)
        seen += page
    stop.set()
    for thread in writers:
        thread.join()
    positions = primary_positions(settings.primary_url, stores)
    wait_until(lambda: replicated(settings.replica_url, positions))
    rest, _ = drain(admin, after)
    seen += rest

    seqs = [item["seq"] for item in seen]
    assert seqs == sorted(set(seqs))  # ascending, each once
    assert seqs == replica_seqs(settings.replica_url, start)[: len(seqs)]
    assert set(positions) <= {item["position"] for item in seen}
    assert len([i for i in seen if i["store"] in stores]) > 20  # the writers did write


def test_an_auditor_scoped_to_a_store_sees_only_its_events(
    api: ApiServer, admin: Client, settings: Settings, store_id: str
) -> None:
    stores, sku = [store_id, f"{store_id}b"], f"A.{store_id}"
    start = head_seq(settings.replica_url)
    open_stores(admin, stores, sku)
    for store in stores:
        receive(admin, store, sku)
    positions = primary_positions(settings.primary_url, stores)
    wait_until(lambda: replicated(settings.replica_url, positions))
    auditor = Client(api, api_key(settings, Role.AUDITOR, [store_id], "history auditor"))

    scoped, _ = drain(auditor, start)
    everything, _ = drain(admin, start)

    assert {item["store"] for item in scoped} == {store_id}
    assert {item["store"] for item in everything} >= {store_id, f"{store_id}b", None}
    assert auditor.get("/v1/events", store=f"{store_id}b").status_code == 403
    only, _ = drain(admin, start, store=f"{store_id}b", type="stock.received")
    assert [(i["store"], i["sku"], i["type"]) for i in only] == [
        (f"{store_id}b", sku, "stock.received")
    ]
    assert only[0]["data"]["quantity"] in (1, "1")
    by_sku, _ = drain(admin, start, sku=sku)
    assert {i["store"] for i in by_sku} == set(stores)
    both, _ = drain(admin, start, store=",".join(stores))
    assert [i["seq"] for i in both] == sorted(i["seq"] for i in everything if i["store"] in stores)


def test_a_stream_reads_in_version_order_from_a_version(
    api: ApiServer, admin: Client, settings: Settings, store_id: str
) -> None:
    sku = f"V.{store_id}"
    open_stores(admin, [store_id], sku)
    last = {}
    for quantity in range(1, 6):
        last = receive(admin, store_id, sku, quantity)
    stream = f"stock-{store_id}-{sku}"

    response = admin.get(
        f"/v1/streams/{stream}/events", from_version=2, limit=3, min_position=last["position"]
    )

    assert response.status_code == 200, response.text
    assert int(response.headers["X-Read-Position"]) >= last["position"]
    page = response.json()
    assert [i["version"] for i in page["items"]] == [2, 3, 4]
    assert [i["data"]["quantity"] for i in page["items"]] in ([2, 3, 4], ["2", "3", "4"])
    with psycopg.connect(settings.primary_url) as conn:
        rows = conn.execute("SELECT version, chain FROM events WHERE stream = %s", (stream,))
        chains = dict(rows.fetchall())
    assert [i["chain"] for i in page["items"]] == [chains[2], chains[3], chains[4]]
    rest = admin.get(f"/v1/streams/{stream}/events", cursor=page["next_cursor"]).json()
    assert [i["version"] for i in rest["items"]] == [5]
    assert rest["next_cursor"] is None
    missing = admin.get(f"/v1/streams/stock-{store_id}-{uuid.uuid4().hex}/events")
    assert (missing.status_code, missing.json()["code"]) == (404, "stream_not_found")
    outsider = Client(api, api_key(settings, Role.AUDITOR, [f"{store_id}z"], "outsider"))
    assert outsider.get(f"/v1/streams/{stream}/events").status_code == 404


PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "from_version": st.integers(-1, 8),
        "cursor": st.sampled_from(["0", "2", "x", "99"]),
        "limit": st.integers(0, 3) | st.just(1001),
        "min_position": st.integers(0, 2),
    },
)
# Headers that differ between any two requests (ids, budgets, the clock).
VARYING = {"x-request-id", "ratelimit", "date"}


def answer(response: httpx.Response, stream: str) -> tuple[int, dict[str, str], str]:
    """Status, stable headers and body, with the stream's name written as <stream>."""
    headers = {k: v for k, v in response.headers.items() if k.lower() not in VARYING}
    return response.status_code, headers, response.text.replace(stream, "<stream>")


def test_a_stream_outside_the_scope_answers_exactly_like_a_missing_one(
    api: ApiServer, admin: Client, settings: Settings
) -> None:
    store_id = f"h{uuid.uuid4().hex[:8]}"
    sku = f"H{uuid.uuid4().hex[:6].upper()}"
    open_stores(admin, [store_id], sku)
    for quantity in range(1, 4):
        last = receive(admin, store_id, sku, quantity)
    hidden = f"stock-{store_id}-{sku}"
    missing = f"stock-{store_id}-H{uuid.uuid4().hex[:6].upper()}"  # as long as `hidden`
    seen_by_admin = admin.get(f"/v1/streams/{hidden}/events", min_position=last["position"])
    assert seen_by_admin.status_code == 200
    outsider = Client(api, api_key(settings, Role.AUDITOR, [f"{store_id}z"], "prober"))

    nowhere = f"h{uuid.uuid4().hex[:8]}"  # a store that does not exist, as long

    @hypothesis.settings(max_examples=40, deadline=None)
    @given(params=PARAMS)
    def probe(params: dict[str, int | str]) -> None:
        seen = outsider.get(f"/v1/streams/{hidden}/events", **params)
        absent = outsider.get(f"/v1/streams/{missing}/events", **params)
        assert answer(seen, hidden) == answer(absent, missing)
        other = outsider.get("/v1/events", store=store_id, limit=params.get("limit"))
        none = outsider.get("/v1/events", store=nowhere, limit=params.get("limit"))
        assert answer(other, store_id) == answer(none, nowhere)

    probe()
