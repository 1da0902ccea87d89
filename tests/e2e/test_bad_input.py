"""Bad input for every command route: a problem response with its api.md code, and nothing
appended to the event store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import ApiServer, bearer
from tests.e2e.reading import events_count

pytestmark = pytest.mark.e2e

STORE = f"bad{uuid.uuid4().hex[:8]}"
OTHER = f"{STORE}o"
WHOLE = f"W.{STORE}"  # decimals 0
EXACT = f"E.{STORE}"  # decimals 2
CLOSED_UNTIL = datetime.now(UTC) - timedelta(days=1)
BEFORE_CLOSE = (CLOSED_UNTIL - timedelta(hours=1)).isoformat()
# Fixed at collection: a day ahead stays in the future however long the suite runs before
# the case does (ten minutes did not, once the whole suite took 25).
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
NOTHING = object()  # a case that sends no Idempotency-Key


@dataclass(frozen=True)
class Route:
    """A command route and a valid body for it; `amount` names its lines' quantity."""

    method: str
    path: str
    body: dict[str, Any]
    amount: str | None = "quantity"
    dated: bool = True
    keyed: bool = True
    refuses: tuple[str, ...] = ("zero", "negative")
    extra: dict[str, Any] = field(default_factory=dict)


def sale_lines(sku: str = WHOLE, quantity: Any = 1) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": quantity}]


ROUTES = {
    "receipts": Route("POST", "/v1/stores/{store}/receipts", {"lines": sale_lines()}),
    "sales": Route("POST", "/v1/stores/{store}/sales", {"sale_id": "new", "lines": sale_lines()}),
    "returns": Route(
        "POST", "/v1/stores/{store}/returns", {"sale_id": "sold", "lines": sale_lines()}
    ),
    "adjustments": Route(
        "POST",
        "/v1/stores/{store}/adjustments",
        {"lines": [{"sku": WHOLE, "delta": -1, "reason": "damaged"}]},
        amount="delta",
        refuses=("zero",),
    ),
    "counts": Route(
        "POST",
        "/v1/stores/{store}/counts",
        {"lines": [{"sku": WHOLE, "counted": 3}]},
        amount="counted",
        refuses=("negative",),
    ),
    "reservations": Route(
        "POST",
        "/v1/stores/{store}/reservations",
        {"reservation_id": "new", "lines": sale_lines()},
        dated=False,
    ),
    "release": Route(
        "POST",
        "/v1/stores/{store}/reservations/{reservation}/release",
        {},
        amount=None,
        dated=False,
    ),
    "fulfil": Route(
        "POST",
        "/v1/stores/{store}/reservations/{reservation}/fulfil",
        {"sale_id": "fulfilled"},
        amount=None,
        dated=False,
    ),
    "reorder-point": Route(
        "PUT",
        "/v1/stores/{store}/stock/{sku}/reorder-point",
        {"min": 2},
        amount=None,
        dated=False,
    ),
    "period-close": Route(
        "POST",
        "/v1/stores/{store}/period-close",
        {"until": CLOSED_UNTIL.isoformat()},
        amount=None,
        dated=False,
    ),
    "transfers": Route(
        "POST",
        "/v1/transfers",
        {"transfer_id": "new", "from_store": STORE, "to_store": OTHER, "lines": sale_lines()},
    ),
    "transfer-receive": Route("POST", "/v1/transfers/{transfer}/receive", {"lines": sale_lines()}),
    "transfer-cancel": Route(
        "POST", "/v1/transfers/{transfer}/cancel", {}, amount=None, dated=False
    ),
    "products": Route(
        "POST", "/v1/products", {"sku": "P", "name": "p"}, amount=None, dated=False, keyed=False
    ),
    "product-changes": Route(
        "PATCH", "/v1/products/{sku}", {"name": "renamed"}, amount=None, dated=False, keyed=False
    ),
    "stores": Route(
        "POST", "/v1/stores", {"id": "x", "name": "x"}, amount=None, dated=False, keyed=False
    ),
}


@dataclass(frozen=True)
class Case:
    """One bad request and the problem it must get."""

    route: str
    what: str
    status: int
    code: str
    body: bytes | None = None  # None: the route's valid body, changed by `change`
    change: dict[str, Any] = field(default_factory=dict)
    key: object = "fresh"  # "fresh", NOTHING, or a literal key
    path: dict[str, str] = field(default_factory=dict)


def with_line(route: Route, **line: Any) -> dict[str, Any]:
    """The route's body with its first line changed."""
    first = {**route.body["lines"][0], **line}
    return {"lines": [first, *route.body["lines"][1:]]}


def cases() -> Iterator[Case]:
    """Every kind of bad input that applies to each route."""
    for name, route in ROUTES.items():
        yield from _common(name, route)
        if route.amount is not None:
            yield from _lines(name, route)
        if route.dated:
            yield Case(
                name,
                "occurred_at in the future",
                422,
                "occurred_at_out_of_range",
                change={"occurred_at": FUTURE},
            )
            yield Case(
                name,
                "occurred_at before the period close",
                409,
                "period_closed",
                change={"occurred_at": BEFORE_CLOSE},
            )
            yield Case(
                name,
                "occurred_at not a time",
                422,
                "validation_failed",
                change={"occurred_at": "yesterday"},
            )
            yield Case(
                name,
                "occurred_at without an offset",
                422,
                "validation_failed",
                change={"occurred_at": "2026-01-01T00:00:00"},
            )
    yield from _specific()


def _common(name: str, route: Route) -> Iterator[Case]:
    yield Case(name, "malformed JSON", 400, "invalid_json", body=b'{"lines": [')
    yield Case(name, "not JSON at all", 400, "invalid_json", body=b"sale please")
    yield Case(name, "an array, not an object", 422, "validation_failed", body=b"[]")
    yield Case(name, "an unknown field", 422, "validation_failed", change={"surprise": 1})
    if route.keyed:
        yield Case(name, "no Idempotency-Key", 400, "idempotency_key_missing", key=NOTHING)
        yield Case(name, "an empty Idempotency-Key", 400, "idempotency_key_missing", key="")
    yield Case(name, "a 256-character Idempotency-Key", 422, "validation_failed", key="k" * 256)
    yield Case(name, "an Idempotency-Key with a space", 422, "validation_failed", key="a b")
    if "{store}" in route.path:
        yield Case(name, "an unknown store", 404, "store_not_found", path={"store": "nowhere"})


def _lines(name: str, route: Route) -> Iterator[Case]:
    amount = route.amount
    assert amount is not None
    bad = {
        "zero": 0,
        "negative": -1,
        "too many decimals": "1.5",
        "beyond 10^12": "1000000000001",
        "beyond -10^12": "-1000000000001",
        "a boolean": True,
        "a word": "many",
        "infinite": "Infinity",
        "not a number": "NaN",
    }
    for what, value in bad.items():
        if what in ("zero", "negative") and what not in route.refuses:
            continue
        yield Case(
            name,
            f"{amount} {what}",
            422,
            "validation_failed",
            change=with_line(route, **{amount: value}),
        )
    exact = with_line(route, sku=EXACT, **{amount: "1.005"})
    yield Case(
        name,
        f"{amount} with 3 decimals for a 2-decimal product",
        422,
        "validation_failed",
        change=exact,
    )
    line = route.body["lines"][0]
    yield Case(name, "empty lines", 422, "validation_failed", change={"lines": []})
    yield Case(name, "lines not a list", 422, "validation_failed", change={"lines": "x"})
    yield Case(
        name,
        "1,001 lines",
        422,
        "validation_failed",
        change={"lines": [{**line, "sku": f"S{n}"} for n in range(1001)]},
    )
    yield Case(name, "a SKU twice", 422, "validation_failed", change={"lines": [line, line]})
    yield Case(
        name,
        "a line without its SKU",
        422,
        "validation_failed",
        change={"lines": [{k: v for k, v in line.items() if k != "sku"}]},
    )
    yield Case(
        name,
        "a line with an unknown field",
        422,
        "validation_failed",
        change=with_line(route, colour="red"),
    )
    if name != "transfer-receive":
        yield Case(
            name,
            "an unknown SKU",
            404,
            "product_not_found",
            change=with_line(route, sku="NO.SUCH.SKU"),
        )


def _specific() -> Iterator[Case]:
    yield Case("returns", "an unknown sale", 404, "sale_not_found", change={"sale_id": "never"})
    yield Case(
        "returns",
        "more than was sold",
        409,
        "return_exceeds_sale",
        change={"lines": sale_lines(quantity=2)},
    )
    yield Case(
        "sales", "a sale_id with a space", 422, "validation_failed", change={"sale_id": "a b"}
    )
    yield Case("sales", "offline a string", 422, "validation_failed", change={"offline": "yes"})
    yield Case("sales", "a used sale_id", 409, "duplicate_sale", change={"sale_id": "sold"})
    yield Case(
        "sales",
        "more than is available",
        409,
        "insufficient_stock",
        change={"lines": sale_lines(quantity=1000)},
    )
    yield Case(
        "adjustments",
        "an unknown reason",
        422,
        "validation_failed",
        change={"lines": [{"sku": WHOLE, "delta": 1, "reason": "magic"}]},
    )
    for version, status, code in ((-1, 422, "validation_failed"), (1, 409, "version_conflict")):
        line = {"sku": WHOLE, "counted": 1, "expected_version": version}
        yield Case("counts", f"expected_version {version}", status, code, change={"lines": [line]})
    yield Case(
        "reservations",
        "expires_at in the past",
        422,
        "validation_failed",
        change={"expires_at": BEFORE_CLOSE},
    )
    yield Case(
        "reservations",
        "a used reservation_id",
        409,
        "duplicate_reservation",
        change={"reservation_id": "held"},
    )
    for route in ("release", "fulfil"):
        yield Case(
            route,
            "an unknown reservation",
            404,
            "reservation_not_found",
            path={"reservation": "never"},
        )
    yield Case("fulfil", "sale_id a number", 422, "validation_failed", change={"sale_id": 7})
    yield Case("fulfil", "a used sale_id", 409, "duplicate_sale", change={"sale_id": "sold"})
    for what, value in (("negative", -1), ("too many decimals", "0.5"), ("huge", "1e13")):
        yield Case("reorder-point", f"min {what}", 422, "validation_failed", change={"min": value})
    yield Case(
        "reorder-point", "max below min", 422, "validation_failed", change={"min": 5, "max": 2}
    )
    yield Case(
        "reorder-point", "an unknown SKU", 404, "product_not_found", path={"sku": "NO.SUCH.SKU"}
    )
    yield Case(
        "period-close", "until in the future", 422, "validation_failed", change={"until": FUTURE}
    )
    yield Case(
        "period-close",
        "until before the current close",
        422,
        "validation_failed",
        change={"until": BEFORE_CLOSE},
    )
    yield Case("period-close", "until missing", 422, "validation_failed", body=b"{}")
    yield Case(
        "transfers", "an unknown source", 404, "store_not_found", change={"from_store": "nowhere"}
    )
    yield Case(
        "transfers",
        "an unknown destination",
        404,
        "store_not_found",
        change={"to_store": "nowhere"},
    )
    yield Case(
        "transfers",
        "the same store at both ends",
        422,
        "validation_failed",
        change={"to_store": STORE},
    )
    yield Case(
        "transfers",
        "a used transfer_id",
        409,
        "duplicate_transfer",
        change={"transfer_id": "{transfer}"},
    )
    for route in ("transfer-receive", "transfer-cancel"):
        yield Case(
            route, "an unknown transfer", 404, "transfer_not_found", path={"transfer": "never"}
        )
    yield Case(
        "transfer-receive",
        "more than is outstanding",
        422,
        "validation_failed",
        change={"lines": sale_lines(quantity=5)},
    )
    yield Case(
        "transfer-receive",
        "a SKU the transfer does not carry",
        422,
        "validation_failed",
        change={"lines": sale_lines(sku=EXACT)},
    )
    yield Case("products", "an existing SKU", 409, "product_exists", change={"sku": WHOLE})
    yield Case("products", "decimals 4", 422, "validation_failed", change={"decimals": 4})
    yield Case("products", "a SKU with a space", 422, "validation_failed", change={"sku": "a b"})
    yield Case("products", "no name", 422, "validation_failed", body=b'{"sku": "P"}')
    yield Case("products", "an empty name", 422, "validation_failed", change={"name": ""})
    yield Case(
        "product-changes", "an unknown SKU", 404, "product_not_found", path={"sku": "NO.SUCH.SKU"}
    )
    yield Case("product-changes", "name a number", 422, "validation_failed", change={"name": 1})
    yield Case("stores", "an existing id", 409, "store_exists", change={"id": STORE})
    yield Case("stores", "an id with a dash", 422, "validation_failed", change={"id": "a-b"})
    yield Case(
        "stores",
        "an unknown policy",
        422,
        "validation_failed",
        change={"negative_stock": "sometimes"},
    )


CASES = list(cases())


class Client:
    """An admin's HTTP client for one API process."""

    def __init__(self, api: ApiServer, key: str) -> None:
        self.http = httpx.Client(base_url=api.base_url, headers=bearer(key), timeout=30)

    def send(self, method: str, path: str, body: Any, key: object = "fresh") -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if key == "fresh":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        elif isinstance(key, str):
            headers["Idempotency-Key"] = key
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.request(method, path, content=content, headers=headers)

    def ok(self, method: str, path: str, body: Any) -> dict[str, Any]:
        response = self.send(method, path, body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="module")
def world(api: ApiServer, admin_key: str) -> Iterator[tuple[Client, dict[str, str]]]:
    """Two stores, two products, a sale, a reservation, an open transfer, a period close."""
    client = Client(api, admin_key)
    for store in (STORE, OTHER):
        client.ok("POST", "/v1/stores", {"id": store, "name": store})
    client.ok("POST", "/v1/products", {"sku": WHOLE, "name": "whole"})
    client.ok("POST", "/v1/products", {"sku": EXACT, "name": "exact", "decimals": 2})
    received_at = (CLOSED_UNTIL - timedelta(days=1)).isoformat()
    lines = [{"sku": WHOLE, "quantity": 10}, {"sku": EXACT, "quantity": "10.5"}]
    client.ok("POST", f"/v1/stores/{STORE}/receipts", {"lines": lines, "occurred_at": received_at})
    client.ok("POST", f"/v1/stores/{STORE}/sales", {"sale_id": "sold", "lines": sale_lines()})
    client.ok(
        "POST",
        f"/v1/stores/{STORE}/reservations",
        {"reservation_id": "held", "lines": sale_lines()},
    )
    transfer = f"t{uuid.uuid4().hex[:8]}"
    client.ok(
        "POST",
        "/v1/transfers",
        {
            "transfer_id": transfer,
            "from_store": STORE,
            "to_store": OTHER,
            "lines": sale_lines(quantity=2),
        },
    )
    client.ok("POST", f"/v1/stores/{STORE}/period-close", {"until": CLOSED_UNTIL.isoformat()})
    yield client, {"store": STORE, "sku": WHOLE, "transfer": transfer, "reservation": "held"}
    client.http.close()


@pytest.mark.parametrize("case", CASES, ids=[f"{case.route}: {case.what}" for case in CASES])
def test_bad_input_is_its_problem_and_appends_nothing(
    world: tuple[Client, dict[str, str]], settings: Settings, case: Case
) -> None:
    client, names = world
    route = ROUTES[case.route]
    values = {**names, **case.path}
    path = route.path.format(**values)
    if case.body is not None:
        body: Any = case.body
    else:
        change = {k: v.format(**names) if isinstance(v, str) else v for k, v in case.change.items()}
        body = {**route.body, **change}
    before = events_count(settings)

    response = client.send(route.method, path, body, case.key)

    assert (response.status_code, response.json().get("code")) == (case.status, case.code), (
        response.text
    )
    assert response.headers["content-type"] == "application/problem+json"
    assert events_count(settings) == before


def test_the_openapi_document_describes_every_command_body_and_response(
    world: tuple[Client, dict[str, str]],
) -> None:
    client, _ = world
    document = client.http.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    for route in ROUTES.values():
        template = route.path.replace("{reservation}", "{reservation_id}")
        template = template.replace("{transfer}", "{transfer_id}")
        operation = document["paths"][template][route.method.lower()]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].split("/")[-1] in schemas, (template, body)
        responses = operation["responses"]
        success = responses.get("201") or responses.get("200")
        assert success is not None and "$ref" in json.dumps(success), (template, responses)
        for status in ("401", "403", "422"):
            assert status in responses, (template, status)
        if route.keyed:
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            assert "Idempotency-Key" in names, template
