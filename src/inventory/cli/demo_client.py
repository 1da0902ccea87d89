"""The demo's HTTP client of the public API and its sample data: stores, products, the
loader that puts them in place (idempotent: fixed keys replay)."""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TextIO

import structlog

from inventory.cli.progress import Progress

log = structlog.get_logger(__name__)

STORES = (
    ("north", "Northside", "Europe/London"),
    ("harbour", "Harbour Street", "Europe/London"),
    ("market", "Market Square", "Europe/Paris"),
)


class Product(NamedTuple):
    """A sample product and its reorder point (the same in every store)."""

    sku: str
    name: str
    category: str
    decimals: int
    unit: str
    reorder_min: int
    reorder_max: int


PRODUCTS = tuple(
    Product(*row)
    for row in (
        ("COFFEE-250", "Ground coffee 250 g", "grocery", 0, "each", 8, 40),
        ("TEA-80", "Black tea, 80 bags", "grocery", 0, "each", 6, 30),
        ("OATS-1K", "Rolled oats 1 kg", "grocery", 0, "each", 6, 30),
        ("PASTA-500", "Spaghetti 500 g", "grocery", 0, "each", 10, 50),
        ("RICE-LOOSE", "Basmati rice, loose", "grocery", 3, "kg", 5, 25),
        ("OLIVE-OIL", "Olive oil 750 ml", "grocery", 0, "each", 5, 24),
        ("MILK-1L", "Whole milk 1 l", "dairy", 0, "each", 12, 60),
        ("BUTTER-250", "Butter 250 g", "dairy", 0, "each", 8, 36),
        ("CHEESE-LOOSE", "Cheddar, by weight", "dairy", 3, "kg", 3, 15),
        ("APPLES-LOOSE", "Apples, by weight", "produce", 3, "kg", 8, 40),
        ("BANANAS", "Bananas, bunch", "produce", 0, "each", 10, 45),
        ("BREAD-SOUR", "Sourdough loaf", "bakery", 0, "each", 6, 24),
        ("CROISSANT", "Butter croissant", "bakery", 0, "each", 10, 40),
        ("SOAP-BAR", "Olive soap bar", "household", 0, "each", 5, 25),
        ("DISH-LIQ", "Dish liquid 500 ml", "household", 0, "each", 5, 25),
        ("BATT-AA4", "AA batteries, 4 pack", "hardware", 0, "each", 4, 20),
        ("BULB-LED", "LED bulb E27 8 W", "hardware", 0, "each", 4, 20),
        ("TAPE-DUCT", "Duct tape 25 m", "hardware", 0, "each", 3, 15),
    )
)
BY_SKU = {product.sku: product for product in PRODUCTS}


class DemoError(Exception):
    """The API refused the demo in a way it cannot work around (bad token, bad URL)."""


@dataclass
class Api:
    """A small JSON client of the public API: retries, idempotency keys and 429s."""

    base: str
    token: str
    timeout: float = 10.0

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body); a network error or 5xx retries with the same key."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode() if body is not None else None
        pause = 0.5
        for _attempt in range(20):
            request = urllib.request.Request(  # noqa: S310 - the URL is the API's, http(s)
                self.base + path, data=data, headers=headers, method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return response.status, json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                status, payload = error.code, _json(error.read())
                if status == 429:
                    time.sleep(float(error.headers.get("Retry-After") or 1))
                    continue
                if status == 401:
                    raise DemoError("the API refused the demo's token (401)") from None
                if status < 500:
                    return status, payload
            except (urllib.error.URLError, OSError) as error:
                log.warning("demo request failed; retrying", path=path, error=str(error))
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
        raise DemoError(f"{method} {path} kept failing; is the API at {self.base} up?")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def sample_quantity(chance: random.Random, decimals: int, low: int, high: int) -> str:
    """A quantity with the product's decimals, as the exact string the API accepts."""
    if decimals == 0:
        return str(chance.randint(low, high))
    step = Decimal(1).scaleb(-decimals)
    whole = Decimal(chance.randint(low * 10**decimals, high * 10**decimals))
    return str((whole * step).quantize(step))


def load(api: Api, out: TextIO = sys.stderr) -> None:
    """Stores, products, opening deliveries and reorder points; idempotent."""
    steps = len(STORES) + len(PRODUCTS) + len(STORES) * (1 + len(PRODUCTS))
    progress = Progress(steps, out, unit="requests")
    for store_id, name, timezone in STORES:
        store = {"id": store_id, "name": name, "timezone": timezone, "negative_stock": "deny"}
        _expect(api.call("POST", "/v1/stores", store), 201, "store_exists")
        progress(1)
    for item in PRODUCTS:
        product = {**item._asdict(), "barcode": _barcode(item.sku)}
        del product["reorder_min"], product["reorder_max"]
        _expect(api.call("POST", "/v1/products", product), 201, "product_exists")
        progress(1)
    opening = random.Random(7)  # noqa: S311 - sample data; the same bodies every run replay
    for store_id, _name, _tz in STORES:
        lines = [
            {
                "sku": p.sku,
                "quantity": sample_quantity(opening, p.decimals, p.reorder_max // 2, p.reorder_max),
            }
            for p in PRODUCTS
        ]
        receipt = {"lines": lines, "reference": "opening stock"}
        path = f"/v1/stores/{store_id}/receipts"
        _expect(api.call("POST", path, receipt, key=f"demo-opening-{store_id}"), 201)
        progress(1)
        for p in PRODUCTS:
            point = {"min": p.reorder_min, "max": p.reorder_max}
            path = f"/v1/stores/{store_id}/stock/{p.sku}/reorder-point"
            _expect(api.call("PUT", path, point, key=f"demo-reorder-{store_id}-{p.sku}"), 201, 200)
            progress(1)
    print(file=out)


def _barcode(sku: str) -> str:
    """A stable EAN-13 in the 2xx range (numbers a shop assigns, never a real product's)."""
    body = "2" + str(int(hashlib.sha256(sku.encode()).hexdigest(), 16) % 10**11).zfill(11)
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str(-total % 10)


def _expect(answer: tuple[int, dict[str, Any]], *accepted: int | str) -> dict[str, Any]:
    status, body = answer
    if status in accepted or body.get("code") in accepted:
        return body
    raise DemoError(f"the API answered {status} {body.get('code', '')}: {body.get('detail', '')}")
