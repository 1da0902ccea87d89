"""A till's stream of sales for the scaling failover tests, and what the primary stored."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import psycopg

from inventory.domain.commands import OpenStore, ReceiptLine, ReceiveStock, RegisterProduct
from inventory.runtime.settings import Settings
from tests.e2e.api_servers import run_commands


def stocked_store(settings: Settings, store: str, skus: list[str], quantity: int) -> None:
    """Open `store`, register `skus` and receive `quantity` of each (no HTTP)."""
    now = datetime.now(UTC)
    lines = tuple(ReceiptLine(sku=sku, quantity=Decimal(quantity)) for sku in skus)
    run_commands(
        settings,
        OpenStore(store_id=store, name=f"Store {store}", now=now),
        *(RegisterProduct(sku=sku, name=f"Scale {sku}", now=now) for sku in skus),
        ReceiveStock(store_id=store, lines=lines, occurred_at=now, now=now),
    )


@dataclass
class Sale:
    """One sale a till sends until it has an answer that is not a server failure."""

    sale_id: str
    sku: str
    statuses: list[int] = field(default_factory=list)
    answered_at: float | None = None  # monotonic time of the 201


async def sell(
    base_url: str,
    key: str,
    store: str,
    sales: list[Sale],
    *,
    tills: int,
    retry: bool,
    also: str | None = None,
) -> list[int]:
    """`tills` concurrent tills sending `sales` (one Idempotency-Key per sale); with
    `retry`, a transport error or a 5xx is resent with the same key, as a till does.
    With `also`, each till GETs that path after each sale; those statuses are returned."""
    others: list[int] = []
    queue: asyncio.Queue[Sale] = asyncio.Queue()
    for sale in sales:
        queue.put_nowait(sale)
    headers = {"Authorization": f"Bearer {key}"}

    async def till(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            sale = queue.get_nowait()
            body = {"sale_id": sale.sale_id, "lines": [{"sku": sale.sku, "quantity": 1}]}
            for _ in range(200 if retry else 1):
                try:
                    response = await http.post(
                        f"/v1/stores/{store}/sales",
                        json=body,
                        headers={**headers, "Idempotency-Key": f"{store}-{sale.sale_id}"},
                    )
                except httpx.TransportError:
                    sale.statuses.append(0)
                    await asyncio.sleep(0.1)
                    continue
                sale.statuses.append(response.status_code)
                if response.status_code < 500:
                    break
                await asyncio.sleep(0.1)
            if sale.statuses and sale.statuses[-1] == 201:
                sale.answered_at = time.monotonic()
            if also is not None:
                others.append((await http.get(also, headers=headers)).status_code)

    limits = httpx.Limits(max_connections=tills)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(till(http) for _ in range(tills)))
    return others


def sales_stored(primary_url: str, store: str) -> dict[str, int]:
    """How many events each sale's stream holds on the primary, by sale id."""
    prefix = f"sale-{store}-"
    with psycopg.connect(primary_url) as conn:
        rows = conn.execute(
            "SELECT stream, count(*) FROM events WHERE stream LIKE %s GROUP BY stream",
            (prefix + "%",),
        ).fetchall()
    return {stream.removeprefix(prefix): int(count) for stream, count in rows}
