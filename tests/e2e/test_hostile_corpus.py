"""A corpus of hand-made malformed requests, made combinatorially (each hostile value in
each field position of each route): not one may answer 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.api_servers import ApiServer, bearer

pytestmark = pytest.mark.e2e

STORE = f"hc{uuid.uuid4().hex[:8]}"
SKU = f"W.{STORE}"
HOLE = "@@"

# Raw JSON fragments, each put in place of one field's value.
BODY_VALUES = [
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    "1e999999999",
    "-1e999999999",
    "1e-999999999",
    '"1e999999999"',
    "NaN",
    "Infinity",
    '"NaN"',
    '"\u0661\u0662"',
    '" 1 "',
    '"1_000"',
    "99999999999999999999999999999",
    "-0",
    "0.00000000000000000000001",
    '"' + "x" * 5000 + '"',
    "[]",
    "{}",
    "null",
    "true",
    '"\u202e"',
    "[" * 40 + "]" * 40,
    '"../../etc/passwd"',
    '"\\"; DROP TABLE events; --"',
    '"\\uffff"',
    '""',
    "-9223372036854775809",
    "9223372036854775808",
]
# Raw query values, percent-encoded as a client could send them.
QUERY_VALUES = [
    "%00",
    "%FF",
    "%C0%80",
    "1e999999999",
    "NaN",
    "-1",
    "99999999999999999999",
    "x" * 3000,
    "%E2%80%AE",
    "..%2F..",
    "%5B%5D",
    "%20",
    "",
    "2026-02-30",
    "9999-12-31T23:59:59Z",
    "-9223372036854775809",
    "a,,b,",
    "%27%3B--",
]
PATH_VALUES = ["%00", "%FF", "x" * 3000, "%2E%2E", "%E2%80%AE", "a%20b", "%25", "-1"]


@dataclass(frozen=True)
class BodyRoute:
    """A route that takes a body, and the positions (key paths) of its fields."""

    method: str
    path: str
    body: dict[str, Any]
    positions: tuple[tuple[str | int, ...], ...]


BODY_ROUTES = [
    BodyRoute(
        "POST",
        f"/v1/stores/{STORE}/sales",
        {"sale_id": "c", "lines": [{"sku": SKU, "quantity": 1}]},
        (
            ("sale_id",),
            ("lines", 0, "sku"),
            ("lines", 0, "quantity"),
            ("occurred_at",),
            ("offline",),
        ),
    ),
    BodyRoute(
        "POST",
        f"/v1/stores/{STORE}/counts",
        {"lines": [{"sku": SKU, "counted": 1, "expected_version": 1}]},
        (("lines", 0, "counted"), ("lines", 0, "expected_version")),
    ),
    BodyRoute(
        "PUT",
        f"/v1/stores/{STORE}/stock/{SKU}/reorder-point",
        {"min": 1, "max": 2},
        (("min",), ("max",)),
    ),
    BodyRoute(
        "POST",
        "/v1/products",
        {"sku": "C", "name": "n", "decimals": 0},
        (("sku",), ("name",), ("decimals",)),
    ),
    BodyRoute(
        "POST", "/v1/stores", {"id": "c", "name": "n", "timezone": "UTC"}, (("id",), ("timezone",))
    ),
    BodyRoute(
        "POST",
        "/v1/users",
        {"username": "c", "password": "a long password 1", "role": "viewer", "stores": ["*"]},
        (("username",), ("role",), ("stores", 0)),
    ),
    BodyRoute("POST", "/v1/auth/token", {"username": "c", "password": "p"}, (("username",),)),
    BodyRoute(
        "POST",
        "/v1/reports",
        {"kind": "movements", "params": {"from": "2026-01-01"}},
        (("kind",), ("params", "from"), ("params", "store")),
    ),
]
QUERY_ROUTES = {
    f"/v1/stores/{STORE}/stock": ("sku", "limit", "cursor", "below_reorder", "min_position"),
    f"/v1/stores/{STORE}/stock/{SKU}": ("as_of", "known_at"),
    f"/v1/stores/{STORE}/stock/{SKU}/ledger": ("from", "to", "cursor"),
    "/v1/reports/movements": ("store", "sku", "from", "to", "format"),
    "/v1/events": ("after", "limit", "store", "type"),
    "/v1/products": ("q", "cursor"),
    "/v1/search": ("q", "store"),
    "/v1/alerts": ("kind", "state"),
}
PATH_ROUTES = [
    "/v1/stores/{}",
    "/v1/products/{}",
    "/v1/stock/{}",
    f"/v1/stores/{STORE}/stock/{{}}/ledger",
    "/v1/streams/{}/events",
    "/v1/reports/{}",
]


def placed(body: dict[str, Any], position: tuple[str | int, ...], fragment: str) -> bytes:
    """The body as JSON with raw `fragment` at `position`."""
    copy: Any = json.loads(json.dumps(body))
    target = copy
    for key in position[:-1]:
        target = target[key]
    target[position[-1]] = HOLE
    return json.dumps(copy).encode().replace(f'"{HOLE}"'.encode(), fragment.encode(), 1)


def requests() -> Iterator[tuple[str, str, bytes | None]]:
    """Every (method, raw path and query, body) of the corpus."""
    for route in BODY_ROUTES:
        for position in route.positions:
            for fragment in BODY_VALUES:
                yield route.method, route.path, placed(route.body, position, fragment)
    for path, names in QUERY_ROUTES.items():
        for name in names:
            for value in QUERY_VALUES:
                yield "GET", f"{path}?{name}={value}", None
    for template in PATH_ROUTES:
        for value in PATH_VALUES:
            yield "GET", template.format(value), None


CORPUS = list(requests())
# Budgets wide enough that every request of the corpus reaches the door and beyond (the
# conftest's API process runs with them).
API_ENV = {"INVENTORY_RATE_LIMIT_ADMIN": "100000/60", "INVENTORY_RATE_LIMIT_LOGIN": "100000/60"}


def test_no_request_of_the_corpus_answers_a_server_error(api: ApiServer, admin_key: str) -> None:
    key = admin_key
    failures: list[str] = []
    with httpx.Client(base_url=api.base_url, headers=bearer(key), timeout=30) as http:
        assert http.post("/v1/stores", json={"id": STORE, "name": STORE}).status_code == 201
        assert http.post("/v1/products", json={"sku": SKU, "name": "w"}).status_code == 201
        for method, target, body in CORPUS:
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            if body is not None:
                headers["Content-Type"] = "application/json"
            url = httpx.URL(api.base_url).copy_with(raw_path=target.encode())
            try:
                response = http.request(method, url, content=body, headers=headers)
            except httpx.RemoteProtocolError:  # a stream cut after its first byte
                failures.append(f"{method} {target[:120]} -> stream cut")
                continue
            if response.status_code >= 500 or response.status_code == 429:
                shown = (body or b"")[:120]
                failures.append(f"{method} {target[:120]} {shown!r} -> {response.status_code}")
    print(f"hostile corpus: {len(CORPUS)} requests, {len(failures)} answered 5xx (or 429)")  # noqa: T201
    assert len(CORPUS) >= 150
    assert failures == []
