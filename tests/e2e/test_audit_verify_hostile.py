"""`GET /v1/audit/verify?store=` given hostile values over a real API: each gets its stable
4xx problem (never a 500, never a "verified" answer about a store that does not exist)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, bearer
from tests.e2e.reading import events_count

pytestmark = pytest.mark.e2e

OWN, OTHER = (f"av{uuid.uuid4().hex[:8]}" for _ in range(2))
VERIFY = "/v1/audit/verify"


@pytest.fixture(scope="module")
def opened(api: ApiServer, admin_key: str) -> Iterator[httpx.Client]:
    """An admin's client, with two stores opened."""
    with httpx.Client(base_url=api.base_url, headers=bearer(admin_key), timeout=60) as client:
        for store in (OWN, OTHER):
            opened = client.post("/v1/stores", json={"id": store, "name": store})
            assert opened.status_code == 201, opened.text
        yield client


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response's problem, once its status, media type and code are the ones expected."""
    assert (response.status_code, response.headers.get("content-type")) == (
        status,
        "application/problem+json",
    ), response.text[:500]
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    return problem


def raw_get(api: ApiServer, key: str, store: str) -> httpx.Response:
    """GET the verification with `store` as sent, however long (httpx caps a URL at 64 KiB)."""
    where = urlsplit(api.base_url)
    connection = HTTPConnection(where.hostname or "", where.port, timeout=60)
    try:
        connection.request("GET", f"{VERIFY}?{urlencode({'store': store})}", headers=bearer(key))
        answer = connection.getresponse()
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return httpx.Response(answer.status, headers=headers, content=answer.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def as_sent(
    opened: httpx.Client, api: ApiServer, admin_key: str
) -> Callable[[str], httpx.Response]:
    """The verification of a store id as sent, by the admin, once the stores are open."""
    assert opened.get("/health/live").status_code == 200
    return lambda store: raw_get(api, admin_key, store)


def test_a_store_of_the_callers_scope_verifies(opened: httpx.Client) -> None:
    answer = opened.get(VERIFY, params={"store": OWN})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["store"], answer.json()["verified"]) == (OWN, True)
    assert answer.json()["events"] >= 1


@pytest.mark.parametrize(
    ("store", "status", "code"),
    [
        ("a\x00b", 400, "invalid_parameter"),
        ("\x00", 400, "invalid_parameter"),
        ("", 422, "validation_failed"),
        ("x" * 60_000, 422, "validation_failed"),
        ("x" * 65, 422, "validation_failed"),
        ("'; DROP TABLE events; --", 422, "validation_failed"),
        ("' OR '1'='1", 422, "validation_failed"),
        ("%' OR store LIKE '%", 422, "validation_failed"),
        (" av", 422, "validation_failed"),
        ("é", 422, "validation_failed"),
        ("nosuchstore", 404, "store_not_found"),
        (f"{OWN}x", 404, "store_not_found"),
    ],
)
def test_a_hostile_or_unknown_store_gets_its_stable_problem(
    as_sent: Callable[[str], httpx.Response], settings: Settings, store: str, status: int, code: str
) -> None:
    before = events_count(settings)
    answer = as_sent(store)
    problem = problem_of(answer, status, code)
    assert len(answer.content) < 4096  # a refused value is never echoed back whole
    assert "verified" not in problem
    assert events_count(settings) == before


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        (Role.MANAGER, [OTHER]),  # a manager of the store: history is for admins and auditors
        (Role.MANAGER, [OWN]),
        (Role.AUDITOR, [OWN]),  # another store's auditor
        (Role.CLERK, [OTHER]),
        (Role.VIEWER, ["*"]),
    ],
)
def test_a_store_outside_the_callers_rights_is_forbidden(
    opened: httpx.Client, settings: Settings, role: Role, scope: list[str]
) -> None:
    key = api_key(settings, role, scope, f"audit hostile {role.value}")
    for store in (OTHER, "nosuchstore", "'; DROP TABLE events; --"):
        answer = opened.get(VERIFY, params={"store": store}, headers=bearer(key))
        problem_of(answer, 403, "forbidden")


def test_a_repeated_or_unknown_parameter_is_refused(opened: httpx.Client) -> None:
    problem_of(opened.get(f"{VERIFY}?store={OWN}&stores={OTHER}"), 400, "unknown_parameter")
    problem_of(opened.get(VERIFY), 422, "validation_failed")


def test_a_million_character_store_id_is_refused_by_the_http_server(
    as_sent: Callable[[str], httpx.Response], settings: Settings
) -> None:
    # A request line this long never reaches the app: uvicorn's parser refuses it with its
    # own plain-text 400 (docs/security.md), a 4xx all the same and nothing read or written.
    before = events_count(settings)
    answer = as_sent("x" * 10**6)
    assert answer.status_code == 400, answer.text[:500]
    assert len(answer.content) < 4096
    assert events_count(settings) == before
