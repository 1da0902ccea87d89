"""Sessions and user administration over HTTP on two real API processes: refresh, password
change and reset, disable and re-scope, and the open feeds that follow them (api.md)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inventory.runtime.settings import Settings
from inventory.security.errors import LastAdmin
from inventory.security.identity import Actor, delete_user
from inventory.security.principal import Role
from inventory.security.tokens import issue_token
from inventory.security.users import UserChanges, update_user
from tests.e2e.api_servers import ApiServer, api_key, api_servers, bearer, open_store
from tests.e2e.test_credentials import close_code, connect

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and longer passphrase"


class World:
    """Two API processes on one Redis namespace, and an admin key."""

    def __init__(self, apis: list[ApiServer], admin: str) -> None:
        self.apis = apis
        self.admin = admin

    def call(self, method: str, path: str, api: int = 0, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", bearer(self.admin))
        url = f"{self.apis[api].base_url}{path}"
        return httpx.request(method, url, headers=headers, timeout=30, **kwargs)

    def feed(self, api: int) -> str:
        return f"ws://127.0.0.1:{self.apis[api].port}/v1/feed"

    def user(self, role: str = "viewer", stores: list[str] | None = None) -> dict[str, Any]:
        name = f"s{uuid.uuid4().hex[:10]}"
        body = {"username": name, "password": PASSWORD, "role": role, "stores": stores or ["*"]}
        created = self.call("POST", "/v1/users", json=body)
        assert created.status_code == 201, created.text
        user: dict[str, Any] = created.json()
        return user

    def login(self, user: dict[str, Any], password: str = PASSWORD, api: int = 0) -> httpx.Response:
        body = {"username": user["username"], "password": password}
        return self.call("POST", "/v1/auth/token", api, json=body, headers={})

    def token(self, user: dict[str, Any], password: str = PASSWORD) -> str:
        answer = self.login(user, password)
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def me(self, token: str, api: int = 0) -> httpx.Response:
        return self.call("GET", "/v1/me", api, headers=bearer(token))


@pytest.fixture(scope="module")
def world(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = Path(tmp_path_factory.mktemp("sessions"))
    admin = api_key(settings, Role.ADMIN, ["*"], "sessions admin")
    with api_servers(server_env, folder, count=2) as apis:
        yield World(apis, admin)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def change_password(
    world: World, token: str, current: str = PASSWORD, new: str = NEW_PASSWORD, api: int = 0
) -> httpx.Response:
    body = {"current_password": current, "new_password": new}
    return world.call("POST", "/v1/me/password", api, headers=bearer(token), json=body)


def test_a_users_token_refreshes_into_a_fresh_one_that_works_everywhere(world: World) -> None:
    user = world.user()
    token = world.token(user)

    refreshed = world.call("POST", "/v1/auth/refresh", headers=bearer(token))

    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["access_token"] != token
    assert refreshed.headers["Cache-Control"] == "no-store"
    assert world.me(body["access_token"], api=1).json()["id"] == user["id"]


def test_an_api_key_an_expired_token_and_no_token_cannot_refresh(
    world: World, settings: Settings
) -> None:
    user = world.user()
    assert settings.jwt_secret is not None
    expired = issue_token(settings.jwt_secret, user["id"], 1, now=time.time() - 60)

    for headers in (bearer(world.admin), bearer(expired), {}):
        problem(world.call("POST", "/v1/auth/refresh", headers=headers), 401, "unauthorized")


def test_a_password_change_refuses_every_other_token_but_keeps_the_changing_one(
    world: World,
) -> None:
    user = world.user("clerk")
    changing, other = world.token(user), world.token(user)

    assert change_password(world, changing).status_code == 204

    problem(world.me(other, api=1), 401, "unauthorized")
    problem(world.call("POST", "/v1/auth/refresh", 1, headers=bearer(other)), 401, "unauthorized")
    assert world.me(changing, api=1).status_code == 200
    refreshed = world.call("POST", "/v1/auth/refresh", 1, headers=bearer(changing))
    assert world.me(refreshed.json()["access_token"]).status_code == 200
    problem(world.login(user), 401, "invalid_credentials")
    assert world.login(user, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"current_password": "not it at all", "new_password": NEW_PASSWORD},
            422,
            "invalid_current_password",
        ),
        ({"current_password": PASSWORD, "new_password": "short"}, 422, "validation_failed"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, 422, "validation_failed"),
        ({"current_password": PASSWORD, "new_password": "x" * 10**6}, 422, "validation_failed"),
        (
            {"current_password": PASSWORD, "new_password": "nul\u0000inside!"},
            422,
            "validation_failed",
        ),
        ({"current_password": PASSWORD}, 422, "validation_failed"),
        (
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "x": 1},
            422,
            "validation_failed",
        ),
    ],
)
def test_bad_password_changes_are_refused_and_change_nothing(
    world: World, body: dict[str, Any], status: int, code: str
) -> None:
    user = world.user()
    token = world.token(user)

    refused = world.call("POST", "/v1/me/password", headers=bearer(token), json=body)

    problem(refused, status, code)
    assert PASSWORD not in refused.text
    assert world.me(token).status_code == 200
    assert world.login(user).status_code == 200


def test_an_api_key_has_no_password_to_change(world: World) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    refused = world.call("POST", "/v1/me/password", json=body)
    problem(refused, 403, "forbidden")


def test_password_changes_spend_the_login_budget(world: World) -> None:
    user = world.user()
    token = world.token(user)
    for _ in range(4):  # the login above spent one of the user's 5 per minute
        problem(change_password(world, token, "wrong guess!"), 422, "invalid_current_password")

    refused = change_password(world, token)

    problem(refused, 429, "rate_limited")
    assert refused.headers["RateLimit-Policy"] == '"login";q=5;w=60'
    assert int(refused.headers["Retry-After"]) >= 1


def test_an_admin_reset_refuses_every_token_of_the_user(world: World) -> None:
    user = world.user("manager")
    token = world.token(user)

    reset = world.call(
        "POST", f"/v1/users/{user['id']}/password", json={"new_password": NEW_PASSWORD}
    )

    assert reset.status_code == 204, reset.text
    problem(world.me(token, api=1), 401, "unauthorized")
    problem(world.login(user), 401, "invalid_credentials")
    assert world.login(user, NEW_PASSWORD).status_code == 200


def test_resets_are_for_admins_of_existing_users_with_valid_passwords(world: World) -> None:
    manager = world.token(world.user("manager"))
    target = world.user()
    path = f"/v1/users/{target['id']}/password"
    good = {"new_password": NEW_PASSWORD}

    problem(world.call("POST", path, headers=bearer(manager), json=good), 403, "forbidden")
    problem(
        world.call("POST", f"/v1/users/{uuid.uuid4()}/password", json=good), 404, "user_not_found"
    )
    problem(world.call("POST", path, json={"new_password": "short"}), 422, "validation_failed")
    problem(
        world.call("POST", path, json={"new_password": "\u0000" * 12}), 422, "validation_failed"
    )
    problem(world.call("POST", "/v1/users/not-a-uuid/password", json=good), 404, "not_found")
    assert world.login(target).status_code == 200


def test_a_disabled_user_cannot_sign_in_and_its_tokens_are_refused(world: World) -> None:
    user = world.user("clerk")
    token = world.token(user)

    changed = world.call("PATCH", f"/v1/users/{user['id']}", json={"disabled": True})

    assert changed.status_code == 200, changed.text
    assert changed.json()["disabled"] is True
    problem(world.me(token, api=1), 401, "unauthorized")
    problem(world.login(user, api=1), 401, "invalid_credentials")
    listed = world.call("GET", "/v1/users", params={"limit": 1000}).json()["items"]
    assert [u["disabled"] for u in listed if u["id"] == user["id"]] == [True]

    enabled = world.call("PATCH", f"/v1/users/{user['id']}", json={"disabled": False})

    assert enabled.json()["disabled"] is False
    problem(world.me(token), 401, "unauthorized")  # re-enabling does not revive old tokens
    assert world.login(user).status_code == 200


def test_a_role_and_scope_change_applies_on_the_next_request(
    world: World, settings: Settings
) -> None:
    store = f"p{uuid.uuid4().hex[:8]}"
    open_store(settings, store)
    user = world.user("clerk")
    token = world.token(user)

    changed = world.call(
        "PATCH", f"/v1/users/{user['id']}", json={"role": "auditor", "stores": [store]}
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "auditor" and changed.json()["stores"] == [store]
    me = world.me(token, api=1).json()
    assert me["role"] == "auditor" and me["stores"] == [store]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_failed"),
        ({"role": "owner"}, "validation_failed"),
        ({"role": "admin", "stores": ["s1"]}, "validation_failed"),  # an admin has ["*"]
        ({"stores": []}, "validation_failed"),
        ({"stores": ["*", "s1"]}, "validation_failed"),
        ({"stores": ["nowhere9"]}, "validation_failed"),
        ({"stores": ["a\u0000b"]}, "validation_failed"),
        ({"disabled": "yes"}, "validation_failed"),
        ({"username": "renamed"}, "validation_failed"),
    ],
)
def test_bad_user_changes_are_422_and_change_nothing(
    world: World, body: dict[str, Any], code: str
) -> None:
    user = world.user("clerk")

    problem(world.call("PATCH", f"/v1/users/{user['id']}", json=body), 422, code)

    listed = world.call("GET", "/v1/users", params={"limit": 1000}).json()["items"]
    assert [(u["role"], u["stores"]) for u in listed if u["id"] == user["id"]] == [("clerk", ["*"])]


def test_user_changes_are_for_admins_and_existing_users(world: World) -> None:
    manager = world.token(world.user("manager"))
    target = world.user()

    patch = {"disabled": True}
    forbidden = world.call(
        "PATCH", f"/v1/users/{target['id']}", headers=bearer(manager), json=patch
    )
    problem(forbidden, 403, "forbidden")
    problem(world.call("PATCH", f"/v1/users/{uuid.uuid4()}", json=patch), 404, "user_not_found")
    world.call("DELETE", f"/v1/users/{target['id']}")
    problem(world.call("PATCH", f"/v1/users/{target['id']}", json=patch), 404, "user_not_found")


def test_every_change_is_in_the_audit_stream_with_who_and_when_without_secrets(
    world: World, settings: Settings
) -> None:
    user = world.user("clerk")
    token = world.token(user)
    world.call("PATCH", f"/v1/users/{user['id']}", json={"role": "viewer"})
    change_password(world, token)
    world.call("POST", f"/v1/users/{user['id']}/password", json={"new_password": PASSWORD + "!"})
    world.call("PATCH", f"/v1/users/{user['id']}", json={"disabled": True})

    with psycopg.connect(settings.primary_url) as conn:
        rows = conn.execute(
            "SELECT type, data, metadata, recorded_at FROM events WHERE stream = 'identity'"
            " AND data->>'user_id' = %s ORDER BY position",
            (user["id"],),
        ).fetchall()
    assert [(row[0], row[1].get("changed"), row[1].get("reset")) for row in rows] == [
        ("identity.user_created", None, None),
        ("identity.user_changed", ["role"], None),
        ("identity.password_changed", None, False),
        ("identity.password_changed", None, True),
        ("identity.user_changed", ["disabled"], None),
    ]
    actors = [(row[2]["actor"]["kind"], row[2]["actor"]["id"]) for row in rows]
    assert actors[2] == ("user", user["id"]) and actors[3][0] == "api_key"
    assert all(row[3] is not None for row in rows)
    everything = json.dumps([row[1:3] for row in rows])
    assert PASSWORD not in everything and NEW_PASSWORD not in everything
    assert "argon2" not in everything


async def test_a_disabled_users_feed_closes_with_4401_in_another_process(world: World) -> None:
    user = world.user()
    socket = await connect(world.feed(0), world.token(user), "header")

    patch = await asyncio.to_thread(
        world.call, "PATCH", f"/v1/users/{user['id']}", 1, json={"disabled": True}
    )
    assert patch.status_code == 200

    assert await close_code(socket) == 4401


async def test_a_narrower_scope_set_through_the_api_closes_the_feed_with_4403(
    world: World, settings: Settings
) -> None:
    stores = [f"q{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for store in stores:
        open_store(settings, store)
    user = world.user("viewer", stores)
    socket = await connect(f"{world.feed(0)}?stores={','.join(stores)}", world.token(user))

    patch = await asyncio.to_thread(
        world.call, "PATCH", f"/v1/users/{user['id']}", 1, json={"stores": stores[:1]}
    )
    assert patch.status_code == 200

    assert await close_code(socket) == 4403


async def test_a_password_change_closes_the_other_sessions_feeds_but_not_its_own(
    world: World,
) -> None:
    user = world.user()
    changing, other = world.token(user), world.token(user)
    kept = await connect(world.feed(0), changing, "subprotocol")
    closed = await connect(world.feed(1), other, "header")

    answer = await asyncio.to_thread(change_password, world, changing)
    assert answer.status_code == 204

    assert await close_code(closed) == 4401
    assert await close_code(kept, seconds=4) is None  # still open after two re-checks


async def test_an_admin_reset_closes_every_feed_of_the_user(world: World) -> None:
    user = world.user()
    socket = await connect(world.feed(1), world.token(user), "query")

    path = f"/v1/users/{user['id']}/password"
    reset = await asyncio.to_thread(world.call, "POST", path, json={"new_password": NEW_PASSWORD})
    assert reset.status_code == 204

    assert await close_code(socket) == 4401


async def test_the_last_enabled_admin_cannot_be_disabled_demoted_or_deleted(
    world: World, settings: Settings
) -> None:
    admin = world.user("admin")
    actor = Actor("test", "cli", "test", "admin")
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        # In one transaction, rolled back: every other admin disabled, as if this were
        # the last one; other tests never see it.
        async with conn.transaction(force_rollback=True):
            await conn.execute(
                "UPDATE users SET disabled_at = now() WHERE role = 'admin' AND id <> %s",
                (admin["id"],),
            )
            for change in (UserChanges(disabled=True), UserChanges(role=Role.MANAGER)):
                with pytest.raises(LastAdmin):
                    await update_user(conn, actor, admin["id"], change)
            with pytest.raises(LastAdmin):
                await delete_user(conn, actor, admin["id"])
            record, changed = await update_user(conn, actor, admin["id"], UserChanges(stores=["*"]))
            assert record.role == "admin" and changed == []
    world.user("admin")  # with another enabled admin, this one may go
    disabled = world.call("PATCH", f"/v1/users/{admin['id']}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
