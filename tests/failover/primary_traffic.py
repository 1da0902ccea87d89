"""What the primary-loss tests drive and check: tills selling through the real API while
the primary dies, and the proofs that nothing was lost, doubled or reordered."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import psycopg
import websockets

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import bearer
from tests.e2e.processes import inventory
from tests.e2e.test_containment import READ_MODELS

SKU = "A"
STOCK = 1_000_000
# Four tills and the feed clients of one admin key, for a minute or two.
BUDGETS = {
    "INVENTORY_RATE_LIMIT_ADMIN": "100000/60",
    "INVENTORY_RATE_LIMIT_WS_HANDSHAKE": "1000/60",
}


class Tills:
    """Threads selling one unit per command through the API. A command that fails (a 503,
    a cut connection) is sent again with its Idempotency-Key until it is acknowledged, as
    a till does: every command started ends acknowledged exactly once."""

    def __init__(self, base_url: str, key: str, store: str, count: int = 4) -> None:
        self.url = f"{base_url}/v1/stores/{store}/sales"
        self.headers = bearer(key)
        self.acknowledged: dict[str, dict[str, Any]] = {}  # sale_id -> command result
        self.replayed = 0
        self.statuses: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.killed_at: float | None = None
        self.first_write_after: float | None = None  # seconds from killed_at
        self.first_result: dict[str, Any] = {}  # the first command acknowledged after it
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._till, daemon=True) for _ in range(count)]

    def start(self) -> None:
        """Start selling."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Let each till finish its command (acknowledged), then stop."""
        self._stop.set()
        for thread in self._threads:
            thread.join(180)
            assert not thread.is_alive(), "a till could not get its command acknowledged"
        assert not self.failures, self.failures

    def _till(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    self._sell(client)
                except AssertionError as failure:
                    self.failures.append(str(failure))
                    return

    def _sell(self, client: httpx.Client) -> None:
        sale_id, key = uuid.uuid4().hex, uuid.uuid4().hex
        body = {"sale_id": sale_id, "lines": [{"sku": SKU, "quantity": 1}]}
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                response = client.post(
                    self.url, json=body, headers={**self.headers, "Idempotency-Key": key}
                )
            except httpx.TransportError as error:
                self._count(type(error).__name__, None)
                time.sleep(0.1)
                continue
            code = response.json().get("code") if response.status_code != 201 else None
            self._count(str(response.status_code), code)
            if response.status_code == 201:
                self._acknowledge(sale_id, response, sent)
                return
            # Only a dependency away may be retried; anything else is a finding.
            assert response.status_code == 503, response.text
            time.sleep(0.1)
        raise AssertionError(f"sale {sale_id} not acknowledged in 150 s")

    def _count(self, status: str, code: str | None) -> None:
        with self._lock:
            self.statuses[status] += 1
            if code:
                self.codes[code] += 1

    def _acknowledge(self, sale_id: str, response: httpx.Response, sent: float) -> None:
        with self._lock:
            self.acknowledged[sale_id] = response.json()
            self.replayed += response.headers.get("Idempotent-Replayed") == "true"
            killed = self.killed_at
            if killed is not None and sent > killed and self.first_write_after is None:
                self.first_write_after = time.monotonic() - killed
                self.first_result = response.json()

    def count(self) -> int:
        """How many commands were acknowledged so far."""
        with self._lock:
            return len(self.acknowledged)


def prepare_store(base_url: str, key: str, store: str) -> None:
    """The product, the store and plenty of stock, through the API."""
    headers = bearer(key)
    calls = [
        ("/v1/products", {"sku": SKU, "name": "Failover test item"}),
        ("/v1/stores", {"id": store, "name": f"Store {store}"}),
        (f"/v1/stores/{store}/receipts", {"lines": [{"sku": SKU, "quantity": STOCK}]}),
    ]
    for path, body in calls:
        response = httpx.post(
            f"{base_url}{path}",
            json=body,
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        assert response.status_code in (201, 409), response.text


def sold_on_primary(primary_url: str, store: str) -> Counter[str]:
    """sale_id -> how many stock.sold events the primary holds for it."""
    with psycopg.connect(primary_url) as conn:
        rows = conn.execute(
            "SELECT data->>'sale_id' FROM events WHERE store = %s AND type = 'stock.sold'",
            (store,),
        ).fetchall()
    return Counter(str(row[0]) for row in rows)


def assert_exactly_once(tills: Tills, primary_url: str, store: str) -> None:
    """Every acknowledged sale is on the (new) primary once; no other sale is there."""
    sold = sold_on_primary(primary_url, store)
    lost = set(tills.acknowledged) - set(sold)
    doubled = {sale for sale, count in sold.items() if count > 1}
    unknown = set(sold) - set(tills.acknowledged)
    assert not lost, f"{len(lost)} acknowledged sales lost"
    assert not doubled, f"{len(doubled)} sales recorded twice"
    assert not unknown, f"{len(unknown)} sales recorded that no till saw acknowledged"


def replica_events(settings: Settings, store: str) -> list[tuple[int, int]]:
    """(seq, position) of the store's events in the replica's copy, by seq."""
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT seq, position FROM events WHERE partition = %s ORDER BY seq", (store,)
        ).fetchall()
    return [(int(seq), int(position)) for seq, position in rows]


def primary_positions(primary_url: str, store: str) -> list[int]:
    """Every position of the store's events on the primary."""
    with psycopg.connect(primary_url) as conn:
        rows = conn.execute(
            "SELECT position FROM events WHERE store = %s ORDER BY position", (store,)
        ).fetchall()
    return [int(row[0]) for row in rows]


def assert_read_models_equal_rebuild(settings: Settings, env: dict[str, str], store: str) -> None:
    """The projected read models equal a rebuild from every event (test_containment's)."""

    def read_models() -> dict[str, list[Any]]:
        with psycopg.connect(settings.replica_url) as conn:
            return {
                name: conn.execute(sql.encode(), ([store],)).fetchall()
                for name, sql in READ_MODELS.items()
            }

    caught_up = read_models()
    rebuilt = inventory("projections", "rebuild", "--all", env=env, timeout=180)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert read_models() == caught_up


async def _feed(
    ws_url: str, key: str, after: int, until_seq: int | None, count: int | None
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with websockets.connect(f"{ws_url}&after={after}", additional_headers=bearer(key)) as ws:
        async with asyncio.timeout(120):
            while True:
                if count is not None and len(events) >= count:
                    return events
                if until_seq is not None and events and events[-1]["seq"] >= until_seq:
                    return events
                message = json.loads(await ws.recv())
                if message["kind"] == "event":
                    events.append(message)


def feed_events(
    base_url: str,
    key: str,
    store: str,
    *,
    after: int = 0,
    count: int | None = None,
    until_seq: int | None = None,
) -> list[dict[str, Any]]:
    """Events of `store` from the live feed after `after`, until `count` or `until_seq`."""
    ws_url = base_url.replace("http://", "ws://") + f"/v1/feed?stores={store}"
    return asyncio.run(_feed(ws_url, key, after, until_seq, count))


def wait_read(base_url: str, key: str, store: str, position: int, since: float) -> float:
    """Seconds from `since` until a query with `min_position=position` answers 200."""
    url = f"{base_url}/v1/stores/{store}/stock/{SKU}"
    while True:
        response = httpx.get(
            url, params={"min_position": position}, headers=bearer(key), timeout=30
        )
        if response.status_code == 200:
            return time.monotonic() - since
        assert response.status_code == 503, response.text
        assert time.monotonic() - since < 180, "reads never reflected the new primary's writes"
        time.sleep(0.1)


def wait_projected(settings: Settings, store: str, timeout: float = 120) -> None:
    """Until every projector's checkpoint of `store` passed the replica's last event."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.replica_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE c.seq < e.last), count(*)"
                " FROM projector_checkpoints AS c,"
                " (SELECT max(seq) AS last FROM events WHERE partition = %(s)s) AS e"
                " WHERE c.partition = %(s)s",
                {"s": store},
            ).fetchone()
            if row is not None and row[0] == 0 and row[1] > 0:
                return
            assert time.monotonic() < deadline, "the projectors did not catch up"
            time.sleep(0.2)


def wait_replicated(settings: Settings, primary_url: str, store: str, timeout: float = 120) -> None:
    """Until the replica's copy holds exactly the primary's events of `store`."""
    deadline = time.monotonic() + timeout
    want = primary_positions(primary_url, store)
    while sorted(position for _, position in replica_events(settings, store)) != want:
        assert time.monotonic() < deadline, "the replica never caught up with the new primary"
        time.sleep(0.2)


def assert_feed_resumes(
    base_url: str, key: str, settings: Settings, store: str, before: list[dict[str, Any]]
) -> None:
    """A client that read `before`, then resumes with `after` = its last seq, gets every
    later event once, in seq order: together they are the replica's copy."""
    copy = replica_events(settings, store)
    resumed = feed_events(base_url, key, store, after=before[-1]["seq"], until_seq=copy[-1][0])
    seen = [(event["seq"], event["position"]) for event in before + resumed]
    seqs = [seq for seq, _ in seen]
    assert seqs == sorted(set(seqs)), "the feed repeated or reordered events"
    assert seen == [pair for pair in copy if pair[0] >= seen[0][0]], "the feed missed events"


def assert_nothing_lost(
    tills: Tills,
    settings: Settings,
    *,
    env: dict[str, str],
    api: tuple[str, str],
    store: str,
    before: list[dict[str, Any]],
) -> None:
    """After a failover (`api`: the API's URL and key): no 500, every acknowledged sale
    once on the new primary, all of it replicated and projected, the feed resumed from
    `before` whole, read models equal to a rebuild."""
    base_url, key = api
    primary = env["INVENTORY_PRIMARY_URL"]
    assert "500" not in tills.statuses, tills.statuses
    assert_exactly_once(tills, primary, store)
    wait_replicated(settings, primary, store)
    wait_projected(settings, store)
    assert_feed_resumes(base_url, key, settings, store, before)
    assert_read_models_equal_rebuild(settings, env, store)
