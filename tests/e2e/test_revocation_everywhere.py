"""Cached principals never outlive a revocation: two API processes on one Redis, each with
the caller's principal cached, refuse it on the very next request after a key is revoked
(through the API or the CLI), a user is disabled, or a user's scope is narrowed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, api_servers, bearer, open_store

CONCURRENT = 40  # calls in flight at once with a token no process has seen yet
WARM_CALLS = 3  # enough for each process to resolve the token once and then use its cache


@pytest.fixture(scope="module")
def apis(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ApiServer]]:
    """Two API processes sharing the session's primary and one Redis namespace."""
    with api_servers(server_env, Path(tmp_path_factory.mktemp("revocation"))) as servers:
        yield servers


@pytest.fixture(scope="module")
def admin(settings: Settings) -> str:
    """An admin's key, for the revocations."""
    return api_key(settings, Role.ADMIN, ["*"], "revocation admin")


def _status(server: ApiServer, token: str, path: str = "/v1/me") -> int:
    return httpx.get(f"{server.base_url}{path}", headers=bearer(token), timeout=10).status_code


def _warm(apis: list[ApiServer], token: str, path: str = "/v1/me") -> None:
    """Use `token` on every process, so each holds its principal in its cache (a read
    model may still be empty: anything but a refusal will do)."""
    for server in apis:
        for _ in range(WARM_CALLS):
            assert _status(server, token, path) not in (401, 403)


def _key_id(apis: list[ApiServer], key: str) -> str:
    me = httpx.get(f"{apis[0].base_url}/v1/me", headers=bearer(key), timeout=10)
    return str(me.json()["id"])


def test_a_key_revoked_in_one_process_is_refused_at_once_by_the_other(
    apis: list[ApiServer], admin: str, settings: Settings
) -> None:
    old = api_key(settings, Role.CLERK, ["*"], "till before rotation")
    new = api_key(settings, Role.CLERK, ["*"], "till after rotation")
    _warm(apis, old)
    _warm(apis, new)
    first, second = apis
    revoked = httpx.delete(
        f"{first.base_url}/v1/api-keys/{_key_id(apis, old)}", headers=bearer(admin), timeout=10
    )
    assert revoked.status_code == 204
    assert _status(second, old) == 401
    assert _status(first, old) == 401
    # The rotation's other half: the key that replaced it works everywhere, uncached or not.
    assert [_status(server, new) for server in apis] == [200, 200]


def test_a_key_revoked_with_the_cli_is_refused_at_once_by_every_process(
    apis: list[ApiServer], settings: Settings
) -> None:
    key = api_key(settings, Role.VIEWER, ["*"], "revoked from the shell")
    _warm(apis, key)
    revoke = subprocess.run(
        [sys.executable, "-m", "inventory", "keys", "revoke", _key_id(apis, key)],
        env={**os.environ, **apis[0].env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoke.returncode == 0, revoke.stderr
    assert "warning" not in revoke.stderr  # Redis heard of it: no grace period
    assert [_status(server, key) for server in apis] == [401, 401]


def _user_token(
    apis: list[ApiServer], admin: str, role: Role, stores: list[str]
) -> tuple[str, str]:
    """A new user (its id) and a token it signed in for."""
    username, password = f"u{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    body = {"username": username, "password": password, "role": role.value, "stores": stores}
    created = httpx.post(
        f"{apis[0].base_url}/v1/users", json=body, headers=bearer(admin), timeout=10
    )
    assert created.status_code == 201, created.text
    signed = httpx.post(
        f"{apis[1].base_url}/v1/auth/token",
        json={"username": username, "password": password},
        timeout=10,
    )
    assert signed.status_code == 200, signed.text
    return str(created.json()["id"]), str(signed.json()["access_token"])


def _change(server: ApiServer, admin: str, user_id: str, change: dict[str, object]) -> None:
    changed = httpx.patch(
        f"{server.base_url}/v1/users/{user_id}", json=change, headers=bearer(admin), timeout=10
    )
    assert changed.status_code == 200, changed.text


def test_a_user_disabled_in_one_process_is_refused_at_once_by_the_other(
    apis: list[ApiServer], admin: str
) -> None:
    user_id, token = _user_token(apis, admin, Role.CLERK, ["*"])
    _warm(apis, token)
    _change(apis[0], admin, user_id, {"disabled": True})
    assert [_status(server, token) for server in apis] == [401, 401]


def test_a_narrowed_scope_holds_at_once_in_every_process(
    apis: list[ApiServer], admin: str, settings: Settings
) -> None:
    open_store(settings, "revoke.a")
    open_store(settings, "revoke.b")
    user_id, token = _user_token(apis, admin, Role.MANAGER, ["revoke.a", "revoke.b"])
    stock = "/v1/stores/revoke.a/stock"
    _warm(apis, token, stock)
    _change(apis[1], admin, user_id, {"stores": ["revoke.b"]})
    assert [_status(server, token, stock) for server in apis] == [403, 403]
    assert [_status(server, token) for server in apis] == [200, 200]


async def _concurrently(server: ApiServer, token: str, calls: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(client.get("/v1/me", headers=bearer(token)) for _ in range(calls))
            )
        )


def test_concurrent_first_calls_of_a_token_each_count_once_and_a_bad_one_fails_each(
    apis: list[ApiServer], settings: Settings
) -> None:
    key = api_key(settings, Role.CLERK, ["*"], "many tills at once")
    answers = asyncio.run(_concurrently(apis[0], key, CONCURRENT))
    assert [answer.status_code for answer in answers] == [200] * CONCURRENT
    # One shared lookup, but each call spent its own unit of the budget.
    remaining = {answer.headers["RateLimit"].rsplit("r=", 1)[1].split(";")[0] for answer in answers}
    assert len(remaining) == CONCURRENT
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    refused = asyncio.run(_concurrently(apis[1], wrong, CONCURRENT))
    assert [answer.status_code for answer in refused] == [401] * CONCURRENT
