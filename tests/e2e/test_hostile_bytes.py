"""Hostile bytes at the door: every class of them gets its api.md 4xx on every kind of
route (commands, queries, identity, reports, the CSV report), and appends nothing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import ApiServer, bearer
from tests.e2e.reading import events_count

pytestmark = pytest.mark.e2e
# Every misread integer below is one more request, and one more feed handshake.
API_ENV = {
    "INVENTORY_RATE_LIMIT_ADMIN": "100000/60",
    "INVENTORY_RATE_LIMIT_WS_HANDSHAKE": "100000/60",
}

STORE = f"hb{uuid.uuid4().hex[:8]}"
SKU = f"W.{STORE}"
JSON = "application/json"


@dataclass(frozen=True)
class Route:
    """A route with a valid request; `body` is None for a query."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    keyed: bool = False


def line(quantity: Any = 1) -> dict[str, Any]:
    return {"sku": SKU, "quantity": quantity}


BODY_ROUTES = [
    Route(
        "sales",
        "POST",
        f"/v1/stores/{STORE}/sales",
        {"sale_id": "s-new", "lines": [line()]},
        keyed=True,
    ),
    Route("receipts", "POST", f"/v1/stores/{STORE}/receipts", {"lines": [line()]}, keyed=True),
    Route("products", "POST", "/v1/products", {"sku": "HB-NEW", "name": "new"}),
    Route(
        "users",
        "POST",
        "/v1/users",
        {
            "username": "hb-new",
            "password": "a long password 1",
            "role": "viewer",
            "stores": [STORE],
        },
    ),
    Route("token", "POST", "/v1/auth/token", {"username": "nobody", "password": "x"}),
    Route("report runs", "POST", "/v1/reports", {"kind": "stock", "params": {}}),
]
QUERY_ROUTES = [
    Route("stock", "GET", f"/v1/stores/{STORE}/stock"),
    Route("products list", "GET", "/v1/products"),
    Route("users list", "GET", "/v1/users"),
    Route("events", "GET", "/v1/events"),
    Route("movements", "GET", "/v1/reports/movements"),
    Route("movements csv", "GET", "/v1/reports/movements?format=csv"),
    Route("low stock", "GET", "/v1/reports/low-stock"),
]
QUANTITY_ROUTES = BODY_ROUTES[:2]


class Client:
    """An admin's client that sends exactly the bytes it is given."""

    def __init__(self, api: ApiServer, key: str) -> None:
        self.http = httpx.Client(base_url=api.base_url, headers=bearer(key), timeout=30)

    def send(
        self,
        route: Route,
        content: bytes | None = None,
        *,
        content_type: str | None = JSON,
        path: str | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if route.keyed:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        if content_type is not None and route.body is not None:
            headers["Content-Type"] = content_type
        if content is None and route.body is not None:
            content = json.dumps(route.body).encode()
        return self.http.request(route.method, path or route.path, content=content, headers=headers)


@pytest.fixture(scope="module")
def client(api: ApiServer, admin_key: str) -> Iterator[Client]:
    """An admin's client, with a store and a product stocked."""
    client = Client(api, admin_key)
    for path, body in (
        ("/v1/stores", {"id": STORE, "name": STORE}),
        ("/v1/products", {"sku": SKU, "name": "whole"}),
    ):
        assert client.http.post(path, json=body).status_code == 201
    receipt = client.http.post(
        f"/v1/stores/{STORE}/receipts",
        json={"lines": [line(50)]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert receipt.status_code == 201, receipt.text
    yield client
    client.http.close()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (response.status_code, response.headers.get("content-type")) == (
        status,
        "application/problem+json",
    ), response.text
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    return problem


def with_value(body: dict[str, Any], value: str) -> bytes:
    """The body as JSON with its first text value (else its first SKU) replaced by raw
    JSON `value`."""
    key = next((k for k, v in body.items() if isinstance(v, str)), None)
    changed = {**body, key: "@@"} if key else {**body, "lines": [{**line(), "sku": "@@"}]}
    return json.dumps(changed).encode().replace(b'"@@"', value.encode())


BODY_CLASSES: dict[str, tuple[Any, int, str]] = {
    "invalid UTF-8": (
        lambda b: json.dumps(b).encode()[:-1] + b', "x": "\xff\xfe"}',
        400,
        "invalid_json",
    ),
    "nested 50,000 deep": (lambda b: b"[" * 50_000 + b"]" * 50_000, 400, "invalid_json"),
    "nested 33 deep in a field": (
        lambda b: with_value(b, "[" * 33 + "]" * 33),
        400,
        "invalid_json",
    ),
    "a raw NUL byte": (lambda b: json.dumps(b).encode() + b"\x00", 400, "invalid_json"),
    "an escaped NUL in a value": (
        lambda b: with_value(b, '"a\\u0000b"'),
        422,
        "validation_failed",
    ),
}


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("what", list(BODY_CLASSES))
def test_a_hostile_body_is_refused_with_its_code_and_appends_nothing(
    client: Client, settings: Settings, route: Route, what: str
) -> None:
    make, status, code = BODY_CLASSES[what]
    assert route.body is not None
    before = events_count(settings)
    assert_problem(client.send(route, make(route.body)), status, code)
    assert events_count(settings) == before


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_declared_json_is_415(
    client: Client, settings: Settings, route: Route, content_type: str | None
) -> None:
    before = events_count(settings)
    response = client.send(route, content_type=content_type)
    assert_problem(response, 415, "unsupported_media_type")
    assert events_count(settings) == before


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.name)
def test_a_body_over_one_mib_is_413(client: Client, route: Route) -> None:
    assert route.body is not None
    assert_problem(
        client.send(route, with_value(route.body, '"' + "x" * 1_100_000 + '"')),
        413,
        "body_too_large",
    )


def test_a_nul_inside_a_value_is_named_by_the_field_the_client_wrote(client: Client) -> None:
    lines = [
        line(),
        {"sku": "A", "quantity": 1},
        {"sku": "B", "quantity": 1},
        {"sku": "C\u0000", "quantity": 1},
    ]
    body = json.dumps({"sale_id": "nul", "lines": lines}).encode()
    problem = assert_problem(client.send(BODY_ROUTES[0], body), 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["lines[3].sku"]


QUANTITIES = {
    "an exponent that overflows": "1e999999999",
    "an exponent": "1e2",
    "a string with an exponent": '"1e2"',
    "a string with a space": '" 1"',
    "a string with an underscore": '"1_0"',
    "a string of Arabic-Indic digits": '"\u0661"',
    "a string with a plus": '"+1"',
    "a string without digits after the point": '"1."',
    "NaN as a string": '"NaN"',
    "Infinity as a string": '"Infinity"',
    "-Infinity as a string": '"-Infinity"',
}


@pytest.mark.parametrize("route", QUANTITY_ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("what", list(QUANTITIES))
def test_a_quantity_outside_the_plain_decimal_grammar_is_422_at_its_field(
    client: Client, settings: Settings, route: Route, what: str
) -> None:
    lines = [line(), *({"sku": f"N{n}", "quantity": 1} for n in range(2)), line("@@")]
    lines[3]["sku"] = "LAST"
    body = json.dumps({**(route.body or {}), "lines": lines}).encode()
    body = body.replace(b'"@@"', QUANTITIES[what].encode())
    before = events_count(settings)
    problem = assert_problem(client.send(route, body), 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["lines[3].quantity"], problem
    assert events_count(settings) == before


def test_an_enum_error_lists_the_allowed_values(client: Client) -> None:
    route = Route(
        "adjustments",
        "POST",
        f"/v1/stores/{STORE}/adjustments",
        {"lines": [{"sku": SKU, "delta": 1, "reason": "magic"}]},
        keyed=True,
    )
    problem = assert_problem(client.send(route), 422, "validation_failed")
    error = problem["errors"][0]
    assert error["field"] == "lines[0].reason"
    assert set(error["allowed"]) >= {"damaged", "correction", "other"}
    csv = client.http.get("/v1/reports/movements", params={"format": "xml"})
    problem = assert_problem(csv, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "format"
    assert sorted(problem["errors"][0]["allowed"]) == ["csv", "json"]


@pytest.mark.parametrize("route", QUERY_ROUTES + BODY_ROUTES, ids=lambda r: r.name)
def test_a_nul_in_the_query_is_400_invalid_parameter(
    client: Client, settings: Settings, route: Route
) -> None:
    joiner = "&" if "?" in route.path else "?"
    before = events_count(settings)
    response = client.send(route, path=f"{route.path}{joiner}limit=1%00")
    assert_problem(response, 400, "invalid_parameter")
    assert events_count(settings) == before


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/stores/{STORE}%00/stock",
        "/v1/products/A%00B",
        f"/v1/stores/{STORE}/stock/A%00",
        "/v1/nowhere%00",
    ],
)
def test_a_nul_in_the_path_is_400_invalid_parameter(client: Client, path: str) -> None:
    assert_problem(client.http.get(path), 400, "invalid_parameter")


@pytest.mark.parametrize("route", QUERY_ROUTES + BODY_ROUTES, ids=lambda r: r.name)
def test_an_unknown_query_parameter_is_400_and_named(
    client: Client, settings: Settings, route: Route
) -> None:
    joiner = "&" if "?" in route.path else "?"
    before = events_count(settings)
    response = client.send(route, path=f"{route.path}{joiner}colour=red&size=9")
    problem = assert_problem(response, 400, "unknown_parameter")
    assert [error["field"] for error in problem["errors"]] == ["colour", "size"]
    assert events_count(settings) == before


@pytest.mark.parametrize(
    ("name", "instead"),
    [("store_id", "store"), ("start_date", "from"), ("end_date", "to"), ("product_id", "sku")],
)
@pytest.mark.parametrize("output", ["json", "csv"])
def test_a_prototype_query_name_is_refused_with_the_name_to_use(
    client: Client, name: str, instead: str, output: str
) -> None:
    response = client.http.get(
        "/v1/reports/movements", params={name: "2026-01-01", "format": output}
    )
    problem = assert_problem(response, 400, "unknown_parameter")
    assert problem["errors"] == [
        {
            "field": name,
            "message": f"Unknown parameter; did you mean `{instead}`?",
            "did_you_mean": instead,
        }
    ]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/reports/movements?from=someday", "from"),
        ("/v1/reports/movements?to=2026-13-01", "to"),
        (f"/v1/stores/{STORE}/stock/{SKU}/ledger?from=someday", "from"),
        # A bare number would be read as a Unix timestamp: not a time the contract offers.
        (f"/v1/stores/{STORE}/stock/{SKU}/ledger?from=-2451", "from"),
        (f"/v1/stores/{STORE}/stock/{SKU}?as_of=1700000000", "as_of"),
        ("/v1/products?limit=many", "limit"),
        ("/v1/products?limit=0", "limit"),
        # The history reads wait only for the events copy: still no position past a bigint.
        ("/v1/events?min_position=-1", "min_position"),
        ("/v1/events?min_position=9223372036854775808", "min_position"),
        (f"/v1/streams/stock-{STORE}-{SKU}/events?min_position=x", "min_position"),
    ],
)
def test_a_bad_query_value_is_named_as_the_client_spelled_it(
    client: Client, path: str, field: str
) -> None:
    problem = assert_problem(client.http.get(path), 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [field], problem


# Integer text that msgspec (`1e3` is 1000, `1.0` is 1) or int() (`+1`, ` 1`, `1_000`,
# Unicode digits) would read as a number the client did not write, and text none reads.
MISREAD_INTEGERS = {
    "an exponent": "1e3",
    "an upper-case exponent": "1E3",
    "a signed exponent": "1e+3",
    "a negative exponent": "10e-1",
    "a point": "1.0",
    "a fraction": "1.5",
    "a float zero": "0.0",
    "minus zero": "-0",
    "a plus": "+1",
    "a leading space": " 1",
    "a trailing space": "1 ",
    "hexadecimal": "0x10",
    "an underscore": "1_000",
    "a fullwidth digit": "\uff11",
    "an Arabic-Indic digit": "\u0663",
    "a superscript": "\u00b2",
    "nothing": "",
    "two minuses": "--1",
    "NaN": "NaN",
    "inf": "inf",
    "a leading zero": "007",
    "past a bigint": str(2**63),
    "forty digits": "9" * 40,
}
# A history read, a stock read, paged lists; each parameter with a value it takes.
INTEGER_PARAMETERS = [
    ("events", "/v1/events", "min_position", "1"),
    ("events", "/v1/events", "after", "1"),
    ("stream", f"/v1/streams/stock-{STORE}-{SKU}/events", "from_version", "1"),
    ("stock level", f"/v1/stores/{STORE}/stock/{SKU}", "min_position", "0"),
    ("stock list", f"/v1/stores/{STORE}/stock", "limit", "1000"),
    ("products", "/v1/products", "limit", "1"),
    ("users", "/v1/users", "limit", "20"),
]
INTEGER_IDS = [f"{route} {name}" for route, _, name, _ in INTEGER_PARAMETERS]


@pytest.mark.parametrize(
    ("path", "name"), [(path, name) for _, path, name, _ in INTEGER_PARAMETERS], ids=INTEGER_IDS
)
@pytest.mark.parametrize("what", list(MISREAD_INTEGERS))
def test_an_integer_query_value_other_than_plain_digits_in_bounds_is_422_and_named(
    client: Client, path: str, name: str, what: str
) -> None:
    response = client.http.get(path, params={name: MISREAD_INTEGERS[what]})
    problem = assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == [name], problem
    assert "ASCII digits" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [(path, name, value) for _, path, name, value in INTEGER_PARAMETERS],
    ids=INTEGER_IDS,
)
def test_an_integer_query_value_in_plain_digits_is_taken(
    client: Client, path: str, name: str, value: str
) -> None:
    response = client.http.get(path, params={name: value})
    # This module runs no worker: the read models may not know its store yet (404
    # store_not_found, and no position but 0 to wait for). Either way the value was taken.
    assert response.status_code in (200, 404), response.text
    assert response.status_code == 200 or response.json()["code"] == "store_not_found"


@pytest.mark.parametrize("what", [what for what, text in MISREAD_INTEGERS.items() if text])
def test_an_alert_id_other_than_plain_digits_in_bounds_is_422_and_named(
    client: Client, what: str
) -> None:
    text = quote(MISREAD_INTEGERS[what], safe="")
    response = client.http.post(f"/v1/alerts/{text}/acknowledge", json={})
    problem = assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["alert_id"], problem
    unknown = client.http.post(f"/v1/alerts/{2**63 - 1}/acknowledge", json={})
    assert_problem(unknown, 404, "alert_not_found")


def opaque(key: str) -> str:
    """A cursor as the API encodes one (api/query_views.encode_cursor)."""
    return base64.urlsafe_b64encode(key.encode()).decode()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/events?cursor=%C2%B2",  # str.isdigit() holds, int() raises
        "/v1/events?cursor=%D9%A3",
        f"/v1/streams/stock-{STORE}-{SKU}/events?cursor=%EF%BC%91",
        "/v1/events?cursor=" + "9" * 5000,  # past int()'s digit limit
        "/v1/alerts?cursor=" + opaque("\u00b2"),
        "/v1/alerts?cursor=" + opaque("\u0663"),
        "/v1/alerts?cursor=" + opaque("9" * 5000),
    ],
)
def test_a_cursor_holding_other_than_plain_digits_is_422(client: Client, path: str) -> None:
    assert_problem(client.http.get(path), 422, "validation_failed")


def feed_close_code(api: ApiServer, key: str, after: str) -> int | None:
    """The code the feed closes with for `after`; None while it stays open (a refusal
    closes at once after the handshake)."""
    url = f"ws://127.0.0.1:{api.port}/v1/feed?after={quote(after, safe='')}"
    with connect(url, additional_headers=bearer(key)) as socket:
        try:
            socket.recv(timeout=3)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None
    return None


@pytest.mark.parametrize("what", list(MISREAD_INTEGERS))
def test_a_feed_after_other_than_plain_digits_in_bounds_closes_with_4400(
    client: Client, api: ApiServer, admin_key: str, what: str
) -> None:
    assert feed_close_code(api, admin_key, MISREAD_INTEGERS[what]) == 4400


def test_a_feed_after_in_plain_digits_is_taken(
    client: Client, api: ApiServer, admin_key: str
) -> None:
    assert feed_close_code(api, admin_key, "0") is None
    assert feed_close_code(api, admin_key, str(2**63 - 1)) is None


def test_a_method_a_path_lacks_is_405_with_every_allowed_method(client: Client) -> None:
    response = client.http.request("PATCH", "/v1/products")
    assert_problem(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    options = client.http.request("OPTIONS", "/v1/api-keys")
    assert set(options.headers["allow"].replace(" ", "").split(",")) == {"GET", "OPTIONS", "POST"}


def test_the_csv_report_names_one_charset(client: Client) -> None:
    response = client.http.get("/v1/reports/movements", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
