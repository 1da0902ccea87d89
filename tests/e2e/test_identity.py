"""Identity over HTTP against two real API processes: tokens, users, keys, revocation."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from inventory.security.tokens import issue_token
from tests.e2e.api_servers import ApiServer, api_key, api_servers, bearer, open_store

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity-logs")


@pytest.fixture(scope="module")
def apis(server_env: dict[str, str], logs: Path) -> Iterator[list[ApiServer]]:
    with api_servers(server_env, logs, count=2) as servers:
        yield servers


@pytest.fixture(scope="module")
def admin(settings: Settings) -> str:
    return api_key(settings, Role.ADMIN, ["*"], "identity tests")


@pytest.fixture
def a(apis: list[ApiServer]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apis[0].base_url, timeout=30) as client:
        yield client


@pytest.fixture
def b(apis: list[ApiServer]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apis[1].base_url, timeout=30) as client:
        yield client


def new_user(
    client: httpx.Client, admin: str, role: str = "clerk", stores: list[str] | None = None
) -> dict[str, object]:
    username = f"u-{uuid.uuid4().hex[:10]}"
    response = client.post(
        "/v1/users",
        headers=bearer(admin),
        json={"username": username, "password": PASSWORD, "role": role, "stores": stores or ["*"]},
    )
    assert response.status_code == 201, response.text
    user: dict[str, object] = response.json()
    return user


def login(client: httpx.Client, username: object, password: str = PASSWORD) -> httpx.Response:
    return client.post("/v1/auth/token", json={"username": username, "password": password})


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def test_a_user_logs_in_and_the_token_names_them(a: httpx.Client, admin: str) -> None:
    user = new_user(a, admin, "manager", ["*"])
    assert "password" not in json.dumps(user)

    response = login(a, user["username"])

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert "RateLimit" in response.headers and "RateLimit-Policy" in response.headers
    me = a.get("/v1/me", headers=bearer(body["access_token"])).json()
    assert me == {
        "id": user["id"],
        "kind": "user",
        "name": user["username"],
        "role": "manager",
        "stores": ["*"],
    }


def test_an_api_key_is_shown_once_and_names_itself(
    a: httpx.Client, admin: str, settings: Settings
) -> None:
    store = f"s{uuid.uuid4().hex[:8]}"
    open_store(settings, store)
    created = a.post(
        "/v1/api-keys",
        headers=bearer(admin),
        json={"name": "till 1", "role": "clerk", "stores": [store]},
    )

    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith(f"inv_{key['prefix']}_")
    me = a.get("/v1/me", headers=bearer(key["key"])).json()
    assert me == {
        "id": key["id"],
        "kind": "api_key",
        "name": "till 1",
        "role": "clerk",
        "stores": [store],
    }


def test_keys_are_listed_by_prefix_without_secrets(a: httpx.Client, admin: str) -> None:
    created = a.post(
        "/v1/api-keys",
        headers=bearer(admin),
        json={"name": "listed", "role": "viewer", "stores": ["*"]},
    ).json()

    listed = a.get("/v1/api-keys", headers=bearer(admin), params={"limit": 1000})

    assert listed.status_code == 200
    mine = [item for item in listed.json()["items"] if item["id"] == created["id"]]
    assert mine and mine[0]["prefix"] == created["prefix"] and "key" not in mine[0]
    assert created["key"] not in listed.text


def test_a_revoked_key_is_refused_by_the_other_process_on_the_next_request(
    a: httpx.Client, b: httpx.Client, admin: str, settings: Settings
) -> None:
    key = a.post(
        "/v1/api-keys",
        headers=bearer(admin),
        json={"name": "pos", "role": "clerk", "stores": ["*"]},
    ).json()
    assert b.get("/v1/me", headers=bearer(key["key"])).status_code == 200

    assert a.delete(f"/v1/api-keys/{key['id']}", headers=bearer(admin)).status_code == 204
    refused = b.get("/v1/me", headers=bearer(key["key"]))

    assert_problem(refused, 401, "unauthorized")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(
        a.delete(f"/v1/api-keys/{key['id']}", headers=bearer(admin)), 404, "api_key_not_found"
    )


def test_a_deleted_users_token_is_refused_by_the_other_process(
    a: httpx.Client, b: httpx.Client, admin: str
) -> None:
    user = new_user(a, admin)
    token = login(a, user["username"]).json()["access_token"]
    assert b.get("/v1/me", headers=bearer(token)).status_code == 200

    assert a.delete(f"/v1/users/{user['id']}", headers=bearer(admin)).status_code == 204

    assert_problem(b.get("/v1/me", headers=bearer(token)), 401, "unauthorized")
    assert_problem(login(b, user["username"]), 401, "invalid_credentials")


def test_a_taken_username_is_409(a: httpx.Client, admin: str) -> None:
    user = new_user(a, admin)
    again = a.post(
        "/v1/users",
        headers=bearer(admin),
        json={
            "username": user["username"],
            "password": PASSWORD,
            "role": "viewer",
            "stores": ["*"],
        },
    )
    assert_problem(again, 409, "user_exists")


def test_users_are_listed_without_secrets(a: httpx.Client, admin: str) -> None:
    user = new_user(a, admin)
    listed = a.get("/v1/users", headers=bearer(admin), params={"limit": 1000})

    assert listed.status_code == 200
    body = listed.json()
    assert user["id"] in [item["id"] for item in body["items"]]
    assert "argon2" not in listed.text and "password" not in listed.text
    page = a.get("/v1/users", headers=bearer(admin), params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"] == page["items"][0]["username"]


def test_a_wrong_password_and_an_unknown_user_are_the_same_401(a: httpx.Client, admin: str) -> None:
    user = new_user(a, admin)

    wrong = assert_problem(
        login(a, user["username"], "not the password"), 401, "invalid_credentials"
    )
    unknown = assert_problem(
        login(a, f"nobody-{uuid.uuid4().hex[:6]}", "not the password"), 401, "invalid_credentials"
    )

    assert wrong["detail"] == unknown["detail"]


def test_login_takes_as_long_for_unknown_users_as_for_wrong_passwords(
    a: httpx.Client, admin: str
) -> None:
    user = new_user(a, admin)

    def timed(username: object) -> float:
        started = time.perf_counter()
        assert login(a, username, "not the password").status_code == 401
        return time.perf_counter() - started

    known = sorted(timed(user["username"]) for _ in range(5))[2]  # the login budget: 5
    unknown = sorted(timed(f"ghost-{uuid.uuid4().hex[:6]}") for _ in range(5))[2]
    # Not a timing goal but a shape: both medians pay one argon2 verification (tens of
    # ms), so neither is a fast path a caller could tell apart. A missing verification
    # would make one side ~100x faster; the factor 4 leaves room for a busy machine.
    assert unknown > known / 4 and known > unknown / 4


def test_the_sixth_login_in_a_minute_is_429_even_with_the_right_password(
    a: httpx.Client, b: httpx.Client, admin: str
) -> None:
    user = new_user(a, admin)
    for attempt in range(5):
        client = a if attempt % 2 else b  # the budget is shared by every process
        assert_problem(
            login(client, user["username"], "wrong password"), 401, "invalid_credentials"
        )

    refused = login(a, user["username"])

    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Policy"] == '"login";q=5;w=60'
    assert refused.headers["RateLimit"].startswith('"login";r=0;')
    # Another username from the same IP still has its own budget.
    other = new_user(a, admin)
    assert login(a, other["username"]).status_code == 200


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no credentials"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "another scheme"),
        ({"Authorization": "Bearer"}, "a scheme without a token"),
        ({"Authorization": "Bearer inv_short"}, "a key of the wrong shape"),
        ({"Authorization": "Bearer inv_abcdefghij_" + "A" * 43}, "an unknown key"),
        ({"Authorization": "Bearer a.b.c"}, "a malformed JWT"),
        ({"Authorization": "Bearer " + "x" * 5000}, "a huge token"),
    ],
)
def test_bad_credentials_are_401(a: httpx.Client, headers: dict[str, str], why: str) -> None:
    response = a.get("/v1/me", headers=headers)

    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), why
    assert response.headers["RateLimit-Policy"].startswith('"anonymous";'), why


def test_expired_and_tampered_tokens_are_401(
    a: httpx.Client, admin: str, settings: Settings
) -> None:
    user = new_user(a, admin)
    assert settings.jwt_secret is not None
    expired = issue_token(settings.jwt_secret, str(user["id"]), 1, now=time.time() - 60)
    token = login(a, user["username"]).json()["access_token"]
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "sub": str(uuid.uuid4())}, "g" * 32).split(".")[1]
    foreign = jwt.encode({**claims}, "another secret entirely, 32 bytes+", algorithm="HS256")

    for bad in (expired, f"{header}.{forged}.{signature}", foreign, f"{header}.{payload}.x"):
        assert_problem(a.get("/v1/me", headers=bearer(bad)), 401, "unauthorized")


def test_a_token_is_refused_once_it_expires_even_when_cached(
    a: httpx.Client, admin: str, settings: Settings
) -> None:
    user = new_user(a, admin)
    assert settings.jwt_secret is not None
    token = issue_token(settings.jwt_secret, str(user["id"]), 2)
    assert a.get("/v1/me", headers=bearer(token)).status_code == 200

    time.sleep(2.5)

    assert_problem(a.get("/v1/me", headers=bearer(token)), 401, "unauthorized")


BAD_USERS = [
    ({"username": "x", "password": PASSWORD, "role": "owner", "stores": ["*"]}, "unknown role"),
    ({"username": "x", "password": PASSWORD, "role": "clerk", "stores": []}, "no stores"),
    ({"username": "x", "password": PASSWORD, "role": "clerk", "stores": ["*", "s1"]}, "* and ids"),
    ({"username": "x", "password": PASSWORD, "role": "admin", "stores": ["s1"]}, "scoped admin"),
    ({"username": "x", "password": "short", "role": "clerk", "stores": ["*"]}, "short password"),
    ({"username": 7, "password": PASSWORD, "role": "clerk", "stores": ["*"]}, "wrong type"),
    ({"username": "x", "password": PASSWORD, "role": "clerk"}, "missing field"),
    (
        {"username": "x", "password": PASSWORD, "role": "clerk", "stores": ["*"], "admin": True},
        "unknown field",
    ),
    ({"username": "no spaces", "password": PASSWORD, "role": "clerk", "stores": ["*"]}, "bad name"),
    (
        {"username": "x", "password": PASSWORD, "role": "clerk", "stores": ["bad id!"]},
        "bad store id",
    ),
]


@pytest.mark.parametrize(("body", "why"), BAD_USERS)
def test_bad_users_are_422(a: httpx.Client, admin: str, body: dict[str, object], why: str) -> None:
    response = a.post("/v1/users", headers=bearer(admin), json=body)

    assert_problem(response, 422, "validation_failed")
    assert PASSWORD not in response.text, why


def test_unknown_store_ids_are_422_naming_them(
    a: httpx.Client, admin: str, settings: Settings
) -> None:
    known = f"s{uuid.uuid4().hex[:8]}"
    open_store(settings, known)
    response = a.post(
        "/v1/api-keys",
        headers=bearer(admin),
        json={"name": "k", "role": "viewer", "stores": [known, "nowhere1"]},
    )

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [{"field": "stores", "message": "unknown store id 'nowhere1'"}]


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"", 400, "invalid_json"),
        (b"{not json", 400, "invalid_json"),
        (b"[]", 422, "validation_failed"),
        (
            b'{"username": "u", "password": ' + b'"' + b"x" * (1024 * 1024 + 10) + b'"}',
            413,
            "body_too_large",
        ),
    ],
)
def test_malformed_bodies_are_clean_4xx(
    a: httpx.Client, admin: str, content: bytes, status: int, code: str
) -> None:
    for path, headers in (("/v1/auth/token", {}), ("/v1/users", bearer(admin))):
        response = a.post(
            path, content=content, headers={**headers, "Content-Type": "application/json"}
        )
        assert_problem(response, status, code)


def test_non_admins_cannot_manage_identities(a: httpx.Client, settings: Settings) -> None:
    manager = api_key(settings, Role.MANAGER, ["*"])
    for method, path in (("GET", "/v1/users"), ("POST", "/v1/api-keys"), ("POST", "/v1/users")):
        response = a.request(method, path, headers=bearer(manager), json={})
        assert_problem(response, 403, "forbidden")


def test_the_audit_stream_names_who_when_and_where_without_secrets(
    a: httpx.Client, admin: str, settings: Settings
) -> None:
    user = new_user(a, admin)
    key = a.post(
        "/v1/api-keys",
        headers=bearer(admin),
        json={"name": "audited", "role": "viewer", "stores": ["*"]},
    ).json()
    a.delete(f"/v1/api-keys/{key['id']}", headers={**bearer(admin), "X-Request-ID": "req-audit-1"})

    with psycopg.connect(settings.primary_url) as conn:
        rows = conn.execute(
            "SELECT type, data, metadata FROM events WHERE stream = 'identity'"
            " AND (data->>'user_id' = %s OR data->>'key_id' = %s) ORDER BY position",
            (user["id"], key["id"]),
        ).fetchall()
        digest = conn.execute("SELECT digest FROM api_keys WHERE id = %s", (key["id"],)).fetchone()
        password_hash = conn.execute(
            "SELECT password_hash FROM users WHERE id = %s", (user["id"],)
        ).fetchone()
    assert [row[0] for row in rows] == [
        "identity.user_created",
        "identity.api_key_created",
        "identity.api_key_revoked",
    ]
    revoked = rows[2][2]
    assert revoked["actor"]["kind"] == "api_key" and revoked["actor"]["role"] == "admin"
    assert revoked["ip"] == "127.0.0.1" and revoked["request_id"] == "req-audit-1"
    everything = json.dumps([row[1:] for row in rows])
    assert digest is not None and password_hash is not None
    for secret in (key["key"], digest[0].hex(), password_hash[0], PASSWORD):
        assert secret not in everything


def test_secrets_never_reach_the_logs(a: httpx.Client, admin: str, logs: Path) -> None:
    user = new_user(a, admin)
    token = login(a, user["username"]).json()["access_token"]
    key = a.post(
        "/v1/api-keys",
        headers=bearer(admin),
        json={"name": "logged", "role": "viewer", "stores": ["*"]},
    ).json()
    a.get("/v1/me", headers=bearer(key["key"]))
    time.sleep(0.2)

    written = "".join(path.read_text() for path in logs.glob("*.log"))
    assert '"request"' in written
    for secret in (PASSWORD, token, key["key"], admin, "$argon2"):
        assert secret not in written


def test_the_openapi_document_describes_identity_with_the_bearer_scheme(a: httpx.Client) -> None:
    schema = a.get("/schema/openapi.json").json()
    paths = schema["paths"]

    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert paths["/v1/auth/token"]["post"].get("security") in (None, [])
    for path, method in (
        ("/v1/me", "get"),
        ("/v1/users", "post"),
        ("/v1/users", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys/{key_id}", "delete"),
    ):
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}], path
        assert {"401", "403", "429"} <= set(operation["responses"]), path
    assert "201" in paths["/v1/users"]["post"]["responses"]
    assert "204" in paths["/v1/api-keys/{key_id}"]["delete"]["responses"]
