"""The shipped edge on Debian's nginx, in front of two real API processes and a worker:
TLS, the redirect, headers, the feed, nginx's own errors, retries, trust and logs.

The tests run in file order: the last one reads every log the others made."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role
from tests.deploy.conftest import Stack
from tests.deploy.edge import Nginx, store_and_product
from tests.e2e.api_servers import ApiServer, api_key, bearer, open_store
from tests.e2e.reading import wait_until

pytestmark = pytest.mark.deploy

PROBLEM = "application/problem+json"
HSTS = "max-age=63072000"
PASSWORD = f"edge password {uuid.uuid4().hex}"


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    """nginx's or the API's problem details, with the edge's headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == f"urn:inventory:problem:{code}"
    assert response.headers["strict-transport-security"] == HSTS


@pytest.fixture(scope="module")
def admin(stack: Stack, settings: Settings) -> Iterator[httpx.Client]:
    """An admin's HTTPS client through nginx (its key is a secret no log may hold)."""
    key = api_key(settings, Role.ADMIN, ["*"], "deploy admin")
    stack.secrets.append(key)
    with stack.nginx.client() as client:
        client.headers.update(bearer(key))
        yield client


@pytest.fixture(scope="module")
def catalogue(admin: httpx.Client, settings: Settings) -> tuple[str, str]:
    """A store and a product to receive into."""
    store, sku = f"s{uuid.uuid4().hex[:10]}", f"EDGE-{uuid.uuid4().hex[:6]}"
    store_and_product(admin, settings, store, sku, "Edge tea")
    return store, sku


def receipt(client: httpx.Client, store: str, sku: str) -> httpx.Response:
    """A keyed receipt of one unit."""
    return client.post(
        f"/v1/stores/{store}/receipts",
        json={"lines": [{"sku": sku, "quantity": 1}]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def test_https_answers_on_tls_1_2_and_1_3(stack: Stack) -> None:
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        with httpx.Client(verify=stack.nginx.tls(version), timeout=30) as client:
            response = client.get(f"{stack.nginx.https_url}/health/live")
            stream = response.extensions["network_stream"]
            assert stream.get_extra_info("ssl_object").version() == name
        assert response.status_code == 200
        assert response.headers["strict-transport-security"] == HSTS


def test_every_answer_carries_the_security_headers_and_one_request_id(stack: Stack) -> None:
    with stack.nginx.client() as client:
        offered = client.get("/health/live", headers={"X-Request-ID": "till-7.42"})
        forged = client.get("/health/live", headers={"X-Request-ID": "no spaces allowed"})

    assert offered.headers.get_list("x-request-id") == ["till-7.42"]
    assert len(forged.headers.get_list("x-request-id")) == 1
    assert forged.headers["x-request-id"] != "no spaces allowed"
    for response in (offered, forged):
        assert response.headers["strict-transport-security"] == HSTS
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "server" not in response.headers or "/" not in response.headers["server"]


def test_plain_http_redirects_to_https(stack: Stack) -> None:
    for method in ("GET", "POST"):
        response = httpx.request(method, f"{stack.nginx.http_url}/v1/me?stores=a", timeout=30)
        assert response.status_code == 301
        assert response.headers["location"] == "https://127.0.0.1/v1/me?stores=a"


def test_a_spoofed_forwarded_for_does_not_change_the_client_the_login_throttle_sees(
    stack: Stack, settings: Settings
) -> None:
    name = f"edge{uuid.uuid4().hex[:10]}"
    bootstrap.create_user(settings.primary_url, name, PASSWORD, Role.VIEWER, ["*"])
    wrong = {"username": name, "password": "not the password"}
    with stack.nginx.client() as client:
        statuses = [
            client.post(
                "/v1/auth/token",
                json=wrong,
                headers={"X-Forwarded-For": f"203.0.113.{attempt}", "X-Real-IP": "203.0.113.9"},
            ).status_code
            for attempt in range(6)
        ]
    # The login budget is 5 a minute per user and client: every attempt came from one client.
    assert statuses == [401] * 5 + [429]


async def test_the_feed_through_tls_delivers_an_event(
    stack: Stack, settings: Settings, admin: httpx.Client, catalogue: tuple[str, str]
) -> None:
    store, sku = catalogue
    name = f"feed{uuid.uuid4().hex[:10]}"
    create = bootstrap.create_user  # it runs its own event loop: off this one
    await asyncio.to_thread(create, settings.primary_url, name, PASSWORD, Role.VIEWER, ["*"])
    stack.secrets.append(PASSWORD)
    with stack.nginx.client() as anonymous:
        login = anonymous.post("/v1/auth/token", json={"username": name, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    stack.secrets.append(token)

    url = f"wss://127.0.0.1:{stack.nginx.https_port}/v1/feed?token={token}&stores={store}"
    async with websockets.connect(url, ssl=stack.nginx.tls()) as feed:
        written = await asyncio.to_thread(receipt, admin, store, sku)
        assert written.status_code == 201, written.text
        position = written.json()["position"]
        async with asyncio.timeout(60):
            while True:  # the store's earlier events come first, then the receipt's
                message: dict[str, Any] = json.loads(await feed.recv())
                if message["kind"] == "event" and message["position"] == position:
                    break
    assert (message["store"], message["sku"]) == (store, sku)


def test_a_body_over_1_mib_is_refused_by_nginx_as_problem_details(
    stack: Stack, admin: httpx.Client, catalogue: tuple[str, str]
) -> None:
    store, _ = catalogue
    body = b"[" + b" " * (1024 * 1024) + b"]"
    path = f"/v1/stores/{store}/receipts"
    declared = admin.post(path, content=body, headers={"Content-Type": "application/json"})
    chunked = admin.post(
        path,
        content=iter([body]),  # no Content-Length: nginx finds out while reading
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    )

    for response in (declared, chunked):
        assert_problem(response, 413, "body_too_large")


def test_an_import_over_1_mib_streams_through_to_its_job(
    admin: httpx.Client, catalogue: tuple[str, str]
) -> None:
    """1 MiB is every route's limit but /v1/imports's, whose CSV may reach 100 MiB."""
    store, prefix = catalogue[0], f"EDGEIMP{uuid.uuid4().hex[:6]}"
    rows = [f"{prefix}-{n},Item {n},{'d' * 1990}" for n in range(1_200)]
    body = ("sku,name,description\n" + "\n".join(rows)).encode()
    assert len(body) > 2 * 1024 * 1024

    response = admin.post(
        "/v1/imports", params={"store": store}, content=body, headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 202, response.text
    job = f"/v1/imports/{response.json()['id']}"
    wait_until(lambda: admin.get(job).json()["status"] in ("done", "failed"), 90)
    final = admin.get(job).json()
    assert (final["status"], final["rows"], final["failed"]) == ("done", 1_200, 0)


def test_no_api_process_answers_502_as_problem_details() -> None:
    nginx = Nginx([free_port(), free_port()])
    nginx.start()
    token = f"feed-token-{uuid.uuid4().hex}"
    try:
        with nginx.client() as client:
            plain = client.get("/v1/me")
            keyed = client.post(
                "/v1/stores/s1/receipts", json={}, headers={"Idempotency-Key": "k-502"}
            )
        url = f"wss://127.0.0.1:{nginx.https_port}/v1/feed?token={token}"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, ssl=nginx.tls(), open_timeout=30)
    finally:
        nginx.stop()

    for response in (plain, keyed):
        assert_problem(response, 502, "upstream_unavailable")
        assert response.headers["retry-after"] == "5"
    assert refused.value.response.status_code == 502
    # nginx's error log writes the request line; the feed's location keeps it out.
    assert token not in nginx.log_text()


def test_metrics_are_not_served_on_the_public_listener(stack: Stack) -> None:
    with stack.nginx.client() as client:
        public = client.get("/metrics")
    scraped = httpx.get(f"{stack.apis[0].base_url}/metrics", timeout=30)

    assert_problem(public, 404, "not_found")
    assert "# HELP" not in public.text
    assert scraped.status_code == 200
    assert "# HELP" in scraped.text


def revive(api: ApiServer) -> None:
    """Start a killed API process again on its port."""
    with api.log.open("ab") as output:
        api.process = subprocess.Popen(
            api.command(), env={**os.environ, **api.env}, stdout=output, stderr=subprocess.STDOUT
        )
    api.wait_live()


def keyed(call: Callable[[str], httpx.Response]) -> Callable[[], httpx.Response]:
    """A till's request: one key for all its tries, tried again when an answer breaks.

    nginx resends what never got an answer, but not what broke after nginx had passed
    the status line on: a process killed between its header and its body leaves the
    client a short read. The till then sends the same key again and the API replays."""
    key = uuid.uuid4().hex

    def attempt() -> httpx.Response:
        for _ in range(2):
            try:
                return call(key)
            except httpx.TransportError:
                continue
        return call(key)

    return attempt


def test_a_killed_api_process_costs_no_keyed_request_and_applies_none_twice(
    stack: Stack, admin: httpx.Client, settings: Settings
) -> None:
    store, sku = f"s{uuid.uuid4().hex[:10]}", f"KILL-{uuid.uuid4().hex[:6]}"
    open_store(settings, store)
    made = admin.post("/v1/products", json={"sku": sku, "name": "Kill tea"}, headers=key_header())
    assert made.status_code == 201, made.text

    def receive(key: str) -> httpx.Response:
        path, body = f"/v1/stores/{store}/receipts", {"lines": [{"sku": sku, "quantity": 1}]}
        return admin.post(path, json=body, headers={"Idempotency-Key": key})

    calls = [
        keyed(lambda _key: admin.get("/v1/me")) if index % 2 else keyed(receive)
        for index in range(160)
    ]
    victim = stack.apis[0]
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(call) for call in calls]
            wait_until(lambda: sum(future.done() for future in futures) >= 40, timeout=120)
            victim.process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
            done, _ = wait(futures, timeout=300)
        statuses = [future.result().status_code for future in done]
    finally:
        victim.process.kill()  # a no-op once SIGKILL landed; the kill when a step failed first
        victim.process.wait(30)
        revive(victim)

    assert len(statuses) == len(calls)
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    # Every receipt landed exactly once: 80 keys, 80 units, however often a till retried.
    wait_until(lambda: on_hand(admin, store, sku) == 80, timeout=60)
    assert on_hand(admin, store, sku) == 80
    # nginx did retry: some request names both upstreams in the access log.
    lines = (stack.nginx.logs / "inventory.access.log").read_text().splitlines()
    assert any("," in json.loads(line)["upstream"] for line in lines)


def on_hand(client: httpx.Client, store: str, sku: str) -> Decimal | None:
    """The item's projected on-hand figure, or None before the read side has it."""
    level = client.get(f"/v1/stores/{store}/stock/{sku}")
    return Decimal(str(level.json()["on_hand"])) if level.status_code == 200 else None


def key_header() -> dict[str, str]:
    """A fresh Idempotency-Key."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_no_secret_reaches_any_log(stack: Stack) -> None:
    nginx_logs, app_logs = stack.nginx.log_text(), stack.app_log_text()
    assert len(stack.secrets) >= 3, "the tests above put a key, a password and a token here"
    for secret in stack.secrets:
        assert secret not in nginx_logs
        assert secret not in app_logs
    assert "token=" not in nginx_logs
    access = (stack.nginx.logs / "inventory.access.log").read_text().splitlines()
    assert access
    for line in access:
        entry = json.loads(line)
        assert "?" not in entry["path"]
        assert "authorization" not in line.lower()
