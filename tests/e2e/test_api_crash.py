"""The API process killed with SIGKILL under a load of multi-line sales: only whole
commands are stored, every 201 a client saw is there, and retries never count twice."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inventory.domain.decider import fold
from inventory.domain.events import ALL_EVENTS, SaleRecorded, StockSold
from inventory.domain.state import decode_state, initial_state
from inventory.eventstore.codec import Codec
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import TEST_ENV, ApiServer, api_key, bearer

pytestmark = pytest.mark.e2e

CLIENTS = 32
SKUS = 4
STOCK = 1_000_000
SUCCESSES_BEFORE_KILL = 150


@dataclass
class Attempt:
    """One sale a client sent, and the status it saw (None: no answer)."""

    key: str
    body: dict[str, Any]
    status: int | None = None
    response: bytes = b""


def sale_body(sale_id: str, skus: list[str], rng: random.Random) -> dict[str, Any]:
    chosen = rng.sample(skus, 3)
    return {
        "sale_id": sale_id,
        "lines": [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in chosen],
    }


async def load(
    api: ApiServer, headers: dict[str, str], store: str, skus: list[str]
) -> list[Attempt]:
    """CLIENTS clients selling until the API dies under them; killed after some 201s."""
    attempts: list[Attempt] = []
    successes = asyncio.Event()
    seen = Counter[int]()

    async def client(number: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(number)
        for sequence in range(10_000):
            sale_id = f"c{number}-{sequence}"
            attempt = Attempt(f"{store}-{sale_id}", sale_body(sale_id, skus, rng))
            attempts.append(attempt)
            try:
                response = await http.post(
                    f"/v1/stores/{store}/sales",
                    json=attempt.body,
                    headers={**headers, "Idempotency-Key": attempt.key},
                )
            except httpx.TransportError:
                return
            attempt.status, attempt.response = response.status_code, response.content
            seen[response.status_code] += 1
            if seen[201] >= SUCCESSES_BEFORE_KILL:
                successes.set()

    async def killer() -> None:
        await successes.wait()
        await asyncio.sleep(random.uniform(0, 0.05))  # somewhere in the middle of commands
        api.process.kill()
        api.process.wait(10)

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30, limits=limits) as http:
        await asyncio.gather(killer(), *(client(n, http) for n in range(CLIENTS)))
    return attempts


def stored(settings: Settings, store: str) -> tuple[dict[str, list[Any]], list[tuple[Any, ...]]]:
    """The store's events by stream (in version order) and its streams' stored states."""
    with psycopg.connect(settings.primary_url) as conn:
        events = conn.execute(
            "SELECT stream, type, data::text FROM events WHERE stream LIKE %s OR stream LIKE %s"
            " ORDER BY stream, version",
            (f"stock-{store}-%", f"sale-{store}-%"),
        ).fetchall()
        states = conn.execute(
            "SELECT stream, state::text FROM streams WHERE stream LIKE %s OR stream LIKE %s",
            (f"stock-{store}-%", f"sale-{store}-%"),
        ).fetchall()
    by_stream: dict[str, list[Any]] = {}
    for stream, kind, data in events:
        by_stream.setdefault(stream, []).append((kind, data))
    return by_stream, states


def whole_sales(settings: Settings, store: str) -> dict[str, Counter[tuple[str, Decimal]]]:
    """Every stored sale's lines, checked against the stock events that carry them, and
    every stream's state checked against the fold of its events."""
    codec = Codec(ALL_EVENTS)
    by_stream, states = stored(settings, store)
    for stream, state in states:
        events = [codec.decode(kind, data) for kind, data in by_stream.get(stream, [])]
        assert fold(initial_state(stream), events) == decode_state(stream, state), stream
    documents: dict[str, Counter[tuple[str, Decimal]]] = {}
    sold: dict[str, Counter[tuple[str, Decimal]]] = {}
    for events in by_stream.values():
        for event in (codec.decode(kind, data) for kind, data in events):
            if isinstance(event, SaleRecorded):
                documents[event.sale_id] = Counter(
                    (line.sku, line.quantity) for line in event.lines
                )
            elif isinstance(event, StockSold):
                sold.setdefault(event.sale_id, Counter())[(event.sku, event.quantity)] += 1
    assert sold == documents  # each sale has exactly its stock events, and no more
    return documents


def assert_sold_once(
    settings: Settings, store: str, skus: list[str], attempts: list[Attempt]
) -> None:
    """Every SKU's stock went down by exactly the quantities the attempts sold."""
    with psycopg.connect(settings.primary_url) as conn:
        for sku in skus:
            row = conn.execute(
                "SELECT state->>'on_hand' FROM streams WHERE stream = %s",
                (f"stock-{store}-{sku}",),
            ).fetchone()
            assert row is not None
            sold = sum(
                line["quantity"]
                for attempt in attempts
                for line in attempt.body["lines"]
                if line["sku"] == sku
            )
            assert Decimal(row[0]) == STOCK - sold


def server(env: dict[str, str], log: Path) -> ApiServer:
    api = ApiServer(env, log)
    api.wait_live()
    return api


def stock_store(api: ApiServer, headers: dict[str, str], store: str, skus: list[str]) -> None:
    """Open `store`, register `skus` and receive STOCK of each, through `api`."""
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=30) as http:
        assert http.post("/v1/stores", json={"id": store, "name": "s"}).status_code == 201
        for sku in skus:
            assert http.post("/v1/products", json={"sku": sku, "name": sku}).status_code == 201
        received = http.post(
            f"/v1/stores/{store}/receipts",
            json={"lines": [{"sku": sku, "quantity": STOCK} for sku in skus]},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert received.status_code == 201, received.text


@dataclass
class Crash:
    """An API killed (-9) under a load of sales: what it was sent and what it stored."""

    env: dict[str, str]
    headers: dict[str, str]
    attempts: list[Attempt]
    documents: dict[str, Any]
    succeeded: list[Attempt]


def crash_under_load(
    server_env: dict[str, str],
    settings: Settings,
    store: str,
    folder: Path,
    *,
    name: str,
    skus: list[str],
) -> Crash:
    """Stock `store` with `skus` through a new API and kill it (-9) under `load`; every
    sale it answered stored whole, and no answer but 201 or none."""
    namespace = f"{name}-{uuid.uuid4().hex[:8]}"
    env = {**server_env, **TEST_ENV, "INVENTORY_REDIS_NAMESPACE": namespace}
    headers = bearer(api_key(settings, Role.ADMIN, ["*"], name))
    first = server(env, folder / "api-1.log")
    try:
        stock_store(first, headers, store, skus)
        attempts = asyncio.run(load(first, headers, store, skus))
    finally:
        first.stop()
    assert first.process.returncode == -9

    documents = whole_sales(settings, store)
    succeeded = [attempt for attempt in attempts if attempt.status == 201]
    assert all(attempt.status in (201, None) for attempt in attempts)
    assert {attempt.body["sale_id"] for attempt in succeeded} <= documents.keys()
    return Crash(env, headers, attempts, documents, succeeded)


def test_a_killed_api_leaves_whole_sales_and_retries_complete_them_once(
    server_env: dict[str, str], settings: Settings, store_id: str, tmp_path: Path
) -> None:
    skus = [f"K{n}.{store_id}" for n in range(SKUS)]
    crash = crash_under_load(server_env, settings, store_id, tmp_path, name="crash", skus=skus)
    env, headers, attempts = crash.env, crash.headers, crash.attempts
    assert len(crash.succeeded) >= SUCCESSES_BEFORE_KILL

    second = server(env, tmp_path / "api-2.log")
    try:
        with httpx.Client(base_url=second.base_url, headers=headers, timeout=30) as http:
            retries = [
                http.post(
                    f"/v1/stores/{store_id}/sales",
                    json=attempt.body,
                    headers={"Idempotency-Key": attempt.key},
                )
                for attempt in attempts
            ]
    finally:
        second.stop()

    for attempt, retry in zip(attempts, retries, strict=True):
        assert retry.status_code == 201, retry.text
        if attempt.status == 201:
            assert retry.headers["Idempotent-Replayed"] == "true"
            assert retry.content == attempt.response
    documents = whole_sales(settings, store_id)
    assert documents.keys() == {attempt.body["sale_id"] for attempt in attempts}
    assert_sold_once(settings, store_id, skus, attempts)
