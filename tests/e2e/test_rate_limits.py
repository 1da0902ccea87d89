"""Rate limits shared by API processes through Redis, for HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import TEST_ENV, ApiServer, api_key, api_servers, bearer, open_store

pytestmark = pytest.mark.e2e

BUDGET = 25


@pytest.fixture(scope="module")
def apis(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ApiServer]]:
    with api_servers(
        server_env,
        Path(tmp_path_factory.mktemp("limits")),
        INVENTORY_RATE_LIMIT_VIEWER=f"{BUDGET}/60",
        INVENTORY_RATE_LIMIT_ANONYMOUS="5/60",
        INVENTORY_TRUSTED_PROXIES="127.0.0.1",
    ) as servers:
        yield servers


async def test_two_processes_admit_exactly_the_budget_under_concurrent_load(
    apis: list[ApiServer], settings: Settings
) -> None:
    key = api_key(settings, Role.VIEWER, ["*"], "budget")
    async with httpx.AsyncClient(timeout=60, headers=bearer(key)) as client:
        calls = [client.get(f"{apis[i % 2].base_url}/v1/me") for i in range(3 * BUDGET)]
        responses = await asyncio.gather(*calls)

    allowed = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(allowed) == BUDGET
    assert len(refused) == 2 * BUDGET
    for response in responses:
        assert response.headers["RateLimit-Policy"] == f'"viewer";q={BUDGET};w=60'
        assert response.headers["RateLimit"].startswith('"viewer";r=')
    remaining = sorted(int(r.headers["RateLimit"].split("r=")[1].split(";")[0]) for r in allowed)
    assert remaining == list(range(BUDGET))
    for response in refused:
        assert response.json()["code"] == "rate_limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_anonymous_calls_are_limited_per_client_ip_behind_a_trusted_proxy(
    apis: list[ApiServer],
) -> None:
    first, second = f"198.51.100.{uuid.uuid4().int % 250}", "2001:db8::7"
    url = f"{apis[0].base_url}/schema/openapi.json"

    statuses = [
        httpx.get(url, headers={"X-Forwarded-For": f"6.6.6.6, {first}"}).status_code
        for _ in range(6)
    ]

    assert statuses == [200] * 5 + [429]
    assert httpx.get(url, headers={"X-Forwarded-For": second}).status_code == 200
    # Probes are never limited.
    for _ in range(10):
        live = httpx.get(f"{apis[0].base_url}/health/live", headers={"X-Forwarded-For": first})
        assert live.status_code == 200


def test_without_redis_calls_are_allowed_logged_and_counted(
    server_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    key = api_key(settings, Role.VIEWER, ["*"], "no redis")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with api_servers(server_env, tmp_path, count=1, INVENTORY_REDIS_URL=dead_redis) as (api,):
        for _ in range(3):
            assert httpx.get(f"{api.base_url}/v1/me", headers=bearer(key)).status_code == 200
        metrics = httpx.get(f"{api.base_url}/metrics").text
        ready = httpx.get(f"{api.base_url}/health/ready", timeout=10).json()

    assert 'inventory_rate_limit_redis_failures_total{policy="viewer"}' in metrics
    assert "redis" in ready["failing"]
    assert "rate limit not enforced" in (tmp_path / "api-0.log").read_text()


@pytest.fixture(scope="module")
def feed_url(server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = Path(tmp_path_factory.mktemp("ws")) / "ws.log"
    env = {
        **os.environ,
        **server_env,
        **TEST_ENV,
        "INVENTORY_REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}",
        "INVENTORY_RATE_LIMIT_WS_HANDSHAKE": "3/60",
        "INVENTORY_RATE_LIMIT_WS_MESSAGE": "5/60",
    }
    with log.open("ab") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.e2e.ws_app:app",
                "--factory",
                "--port",
                str(port),
                "--no-proxy-headers",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                break
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text()) from None
            time.sleep(0.1)
    yield f"ws://127.0.0.1:{port}/test/feed"
    server.terminate()
    server.wait(30)


async def close_code(url: str, **kwargs: object) -> int | None:
    async with websockets.connect(url, **kwargs) as socket:  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(socket.recv(), 10)
            await asyncio.wait_for(socket.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


async def test_a_websocket_takes_the_token_from_the_header_or_the_query(
    feed_url: str, settings: Settings
) -> None:
    key = api_key(settings, Role.VIEWER, ["*"], "ws viewer")
    async with websockets.connect(feed_url, additional_headers=bearer(key)) as socket:
        hello = await socket.recv()
        assert '"hello"' in str(hello) and "ws viewer" in str(hello)
    async with websockets.connect(f"{feed_url}?token={key}") as socket:
        assert '"hello"' in str(await socket.recv())


async def test_a_websocket_without_or_out_of_scope_is_closed_with_its_code(
    feed_url: str, settings: Settings
) -> None:
    own = f"s{uuid.uuid4().hex[:8]}"
    open_store(settings, own)
    scoped = api_key(settings, Role.VIEWER, [own], "ws scoped")
    clerk = api_key(settings, Role.CLERK, ["*"], "ws clerk")

    assert await close_code(feed_url) == 4401
    assert await close_code(f"{feed_url}?token=inv_nope") == 4401
    assert await close_code(f"{feed_url}?token={clerk}") == 4403
    assert await close_code(f"{feed_url}?token={scoped}&stores=elsewhere") == 4403


async def test_handshakes_per_principal_and_messages_per_connection_are_limited(
    feed_url: str, settings: Settings
) -> None:
    key = api_key(settings, Role.AUDITOR, ["*"], "ws limits")
    url = f"{feed_url}?token={key}"
    async with websockets.connect(url) as socket:
        await socket.recv()
        echoes: list[str] = []

        async def chat() -> None:
            for index in range(10):
                await socket.send(f"message {index}")
                echoes.append(str(await asyncio.wait_for(socket.recv(), 10)))

        with pytest.raises(ConnectionClosed) as closed:
            await chat()
        assert len(echoes) == 5
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    for _ in range(2):  # three handshakes per minute: this connection was the first
        async with websockets.connect(url) as socket:
            await socket.recv()
    assert await close_code(url) == 4429
