"""A session ends INVENTORY_SESSION_MAX_SECONDS after its login: refreshing a token never
issues one that outlives it, and refreshing after it is 401 `unauthorized`."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.e2e.api_servers import ApiServer, bearer

pytestmark = pytest.mark.e2e

SESSION_SECONDS = 3
API_ENV = {"INVENTORY_JWT_TTL_SECONDS": "2", "INVENTORY_SESSION_MAX_SECONDS": str(SESSION_SECONDS)}
PASSWORD = "correct horse battery staple"


def claims(token: str) -> dict[str, Any]:
    """The token's claims, read without its secret (the API has checked them)."""
    read: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return read


def signed_in(api: ApiServer, admin_key: str) -> str:
    """A new viewer's first token."""
    name = f"s{uuid.uuid4().hex[:10]}"
    user = {"username": name, "password": PASSWORD, "role": "viewer", "stores": ["*"]}
    created = httpx.post(f"{api.base_url}/v1/users", json=user, headers=bearer(admin_key))
    assert created.status_code == 201, created.text
    login = {"username": name, "password": PASSWORD}
    answer = httpx.post(f"{api.base_url}/v1/auth/token", json=login)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def test_refreshing_a_token_every_second_ends_with_the_session(
    api: ApiServer, admin_key: str
) -> None:
    token = signed_in(api, admin_key)
    login = claims(token)
    answers: list[httpx.Response] = []
    for _ in range(8):  # never refused, the loop would outlast the session by 5 s
        time.sleep(1)
        answers.append(httpx.post(f"{api.base_url}/v1/auth/refresh", headers=bearer(token)))
        if answers[-1].status_code != 200:
            break
        token = answers[-1].json()["access_token"]
        refreshed = claims(token)
        assert refreshed["auth_time"] == login["auth_time"] == login["iat"]
        assert refreshed["exp"] <= login["iat"] + SESSION_SECONDS
        assert refreshed["exp"] - refreshed["iat"] == answers[-1].json()["expires_in"]

    last = answers[-1]
    assert last.status_code == 401, last.text
    assert last.json()["code"] == "unauthorized"
    assert last.headers["content-type"].startswith("application/problem+json")
    assert 200 in [answer.status_code for answer in answers]
