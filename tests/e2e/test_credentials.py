"""Credentials on real processes: open feeds follow their principal's rights in every API
process, and no secret used in the run reaches any log file (api.md, Identity)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from inventory.security.tokens import issue_token
from tests.e2e.api_servers import ApiServer, api_key, api_servers, bearer, open_store
from tests.e2e.processes import inventory
from tests.e2e.reading import start_worker
from tests.e2e.test_identity_cli import with_stdin

pytestmark = pytest.mark.e2e

# Every secret this module uses; the last test looks for each in every log file.
SECRETS: list[str] = []


def secret(value: str) -> str:
    """Remember `value` as a secret that must appear in no log."""
    SECRETS.append(value)
    return value


class Run:
    """Two API processes and a worker on one Redis namespace, their logs in `folder`."""

    def __init__(self, apis: list[ApiServer], folder: Path, admin: str) -> None:
        self.apis = apis
        self.folder = folder
        self.admin = admin

    def url(self, api: int, path: str) -> str:
        return f"{self.apis[api].base_url}{path}"

    def feed(self, api: int, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.apis[api].port}/v1/feed{query}"

    def call(self, method: str, path: str, api: int = 0, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", bearer(self.admin))
        return httpx.request(method, self.url(api, path), headers=headers, timeout=30, **kwargs)

    def user(self, role: str, stores: list[str], api: int = 0) -> tuple[str, str]:
        """A new user through the API: (id, token from a login)."""
        name, password = f"u{uuid.uuid4().hex[:10]}", secret(f"pw-{uuid.uuid4().hex}")
        body = {"username": name, "password": password, "role": role, "stores": stores}
        created = self.call("POST", "/v1/users", api, json=body)
        assert created.status_code == 201, created.text
        return created.json()["id"], self.login(name, password, api)

    def login(self, name: str, password: str, api: int = 0) -> str:
        login = {"username": name, "password": password}
        answer = self.call("POST", "/v1/auth/token", api, json=login, headers={})
        assert answer.status_code == 200, answer.text
        return secret(answer.json()["access_token"])

    def key(self, role: str, stores: list[str], api: int = 0) -> tuple[str, str]:
        """A new API key through the API: (id, key)."""
        body = {"name": f"k{uuid.uuid4().hex[:8]}", "role": role, "stores": stores}
        created = self.call("POST", "/v1/api-keys", api, json=body)
        assert created.status_code == 201, created.text
        return created.json()["id"], secret(created.json()["key"])


@pytest.fixture(scope="module")
def run(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    folder = Path(tmp_path_factory.mktemp("credentials"))
    admin = secret(api_key(settings, Role.ADMIN, ["*"], "credentials admin"))
    # At DEBUG: no secret may appear at any level.
    with api_servers(server_env, folder, count=2, INVENTORY_LOG_LEVEL="DEBUG") as apis:
        namespace = apis[0].env["INVENTORY_REDIS_NAMESPACE"]
        debug = {**server_env, "INVENTORY_LOG_LEVEL": "DEBUG"}
        worker = start_worker(debug, namespace, folder / "worker.log")
        try:
            yield Run(apis, folder, admin)
        finally:
            worker.terminate()
            worker.wait(30)


async def connect(url: str, token: str | None = None, how: str = "header") -> ClientConnection:
    """An open feed: the token in the Authorization header, a subprotocol or the query."""
    if how == "header":
        return await websockets.connect(url, additional_headers=bearer(token or ""))
    if how == "subprotocol":
        offered = [Subprotocol("inventory.v1"), Subprotocol(f"bearer.{token}")]
        return await websockets.connect(url, subprotocols=offered)
    joiner = "&" if "?" in url else "?"
    return await websockets.connect(f"{url}{joiner}token={token}")


async def close_code(socket: ClientConnection, seconds: float = 30) -> int | None:
    """The code the server closes with, reading (and dropping) messages until then."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await socket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        await socket.close()
        return None


async def test_the_feed_takes_its_token_from_a_subprotocol_and_answers_inventory_v1(
    run: Run,
) -> None:
    _, key = run.key("viewer", ["*"])

    socket = await connect(run.feed(0), key, "subprotocol")

    assert socket.subprotocol == "inventory.v1"
    await socket.close()


async def test_a_key_revoked_in_another_process_closes_its_feed_with_4401(run: Run) -> None:
    key_id, key = run.key("viewer", ["*"])
    socket = await connect(run.feed(0), key, "header")

    assert run.call("DELETE", f"/v1/api-keys/{key_id}", api=1).status_code == 204

    assert await close_code(socket) == 4401


async def test_a_key_revoked_from_the_command_line_closes_its_feed_with_4401(
    run: Run, server_env: dict[str, str]
) -> None:
    key_id, key = run.key("auditor", ["*"])
    sockets = [await connect(run.feed(api), key, "query") for api in (0, 1)]

    env = {**server_env, "INVENTORY_REDIS_NAMESPACE": run.apis[0].env["INVENTORY_REDIS_NAMESPACE"]}
    revoked = inventory("keys", "revoke", key_id, env=env)
    assert revoked.returncode == 0, revoked.stderr

    assert [await close_code(socket) for socket in sockets] == [4401, 4401]


async def test_a_deleted_users_feed_closes_with_4401(run: Run) -> None:
    user_id, token = run.user("viewer", ["*"])
    socket = await connect(run.feed(0), token, "header")

    assert run.call("DELETE", f"/v1/users/{user_id}", api=1).status_code == 204

    assert await close_code(socket) == 4401


async def test_a_narrower_scope_closes_the_feed_with_4403_without_any_announcement(
    run: Run, settings: Settings
) -> None:
    stores = [f"c{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for store in stores:
        open_store(settings, store)
    user_id, token = run.user("viewer", stores)
    socket = await connect(run.feed(0), token, "subprotocol")

    # Straight on the primary: no process announces it, the periodic re-check finds it.
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        await conn.execute("UPDATE users SET stores = %s WHERE id = %s", (stores[:1], user_id))

    assert await close_code(socket) == 4403


async def test_an_expired_token_closes_the_feed_with_4401(run: Run) -> None:
    user_id, _ = run.user("viewer", ["*"])
    short = secret(issue_token(run.apis[0].env["INVENTORY_JWT_SECRET"], user_id, 3))
    socket = await connect(run.feed(1), short, "header")

    assert await close_code(socket) == 4401


def test_no_secret_used_in_the_run_appears_in_any_log_file(
    run: Run, server_env: dict[str, str], topology: EmbeddedTopology
) -> None:
    asyncio.run(use_every_credential(run, server_env))
    run.apis[0].stop()
    run.apis[1].stop()  # flushed; the fixture's stop finds them stopped

    logs = [*run.folder.rglob("*.log"), *logs_under(topology.home)]
    assert len(logs) >= 6, logs  # both APIs, the worker, primary, replica, Redis
    assert len(SECRETS) >= 10
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [value[:12] for value in SECRETS if value in text]
        assert not leaked, f"{log} holds secrets starting {leaked}"


def logs_under(home: Path) -> list[Path]:
    """The embedded servers' log files."""
    return [
        path
        for path in home.rglob("*")
        if path.is_file() and (path.suffix == ".log" or path.parent.name in ("log", "logs"))
    ]


async def use_every_credential(run: Run, server_env: dict[str, str]) -> None:
    """Logins, tokens in headers and in `?token=`, keys, passwords through the CLI and the
    API, the feed with each way to authenticate, and bad credentials of every shape."""
    _, token = run.user("auditor", ["*"])
    name = f"cli{uuid.uuid4().hex[:8]}"
    password = secret(f"cli-pw-{uuid.uuid4().hex}")
    created = with_stdin(
        server_env, f"{password}\n", "users", "create", name, "--role", "viewer", "--password-stdin"
    )
    assert created.returncode == 0, created.stderr
    cli_token = run.login(name, password, api=1)
    _, key = run.key("viewer", ["*"], api=1)
    for credential in (token, cli_token, key, run.admin):
        assert run.call("GET", "/v1/me", headers=bearer(credential)).status_code == 200
        run.call("GET", f"/v1/me?token={credential}&access_token={credential}", headers={})
        for how in ("header", "subprotocol", "query"):
            socket = await connect(run.feed(0, "?stores="), credential, how)
            await socket.close()
    cookie = {"Cookie": f"session={secret(uuid.uuid4().hex)}", **bearer(key)}
    assert run.call("GET", "/v1/me", headers=cookie).status_code == 200
    await (await websockets.connect(run.feed(1), additional_headers=cookie)).close()
    wrong = {"username": name, "password": secret(f"wrong-{uuid.uuid4().hex}")}
    assert run.call("POST", "/v1/auth/token", json=wrong, headers={}).status_code == 401
    fake_key = secret(key[:-6] + "AAAAAA")
    fake_jwt = secret(token[:-6] + "AAAAAA")
    for bad in (fake_key, fake_jwt):
        assert run.call("GET", "/v1/me", headers=bearer(bad)).status_code == 401
        for how in ("header", "subprotocol", "query"):
            assert await close_code(await connect(run.feed(1), bad, how)) == 4401


@pytest.fixture(scope="module")
def throttled(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    folder = Path(tmp_path_factory.mktemp("throttled"))
    with api_servers(
        server_env,
        folder,
        count=1,
        INVENTORY_RATE_LIMIT_ANONYMOUS="3/60",
        INVENTORY_TRUSTED_PROXIES="127.0.0.1",
    ) as (api,):
        yield api


async def test_bad_handshakes_spend_the_ips_budget_then_close_with_4429(
    throttled: ApiServer, settings: Settings
) -> None:
    url = f"ws://127.0.0.1:{throttled.port}/v1/feed"
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    other = f"203.0.113.{uuid.uuid4().int % 250}"
    guess = "inv_aaaaaaaaaa_" + "A" * 43

    async def handshake(from_ip: str, token: str | None) -> int | None:
        headers = {"X-Forwarded-For": from_ip}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await close_code(await websockets.connect(url, additional_headers=headers))

    codes = [await handshake(ip, guess if i % 2 else None) for i in range(5)]

    assert codes == [4401, 4401, 4401, 4429, 4429]
    assert await handshake(other, guess) == 4401
    good = api_key(settings, Role.VIEWER, ["*"], "throttled but valid")
    headers = {**bearer(good), "X-Forwarded-For": ip}
    socket = await websockets.connect(url, additional_headers=headers)
    assert await close_code(socket, seconds=2) is None  # still open: good credentials pass
