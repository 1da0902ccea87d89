"""The shipped edge sends a store's commands to one API process (`hash` by store), spreads
stores over both, skips a killed process, and never lets a hostile path pick a backend.

Which process served a request is read from each process's own request log."""

from __future__ import annotations

import json
import re
import signal
import socket
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.deploy.conftest import Stack
from tests.deploy.edge import NGINX_DIR, SITE, SNIPPETS, store_and_product
from tests.e2e.api_servers import ApiServer, api_key, bearer
from tests.e2e.reading import wait_until

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def admin(stack: Stack, settings: Settings) -> Iterator[httpx.Client]:
    """An admin's HTTPS client through nginx."""
    key = api_key(settings, Role.ADMIN, ["*"], "routing admin")
    with stack.nginx.client() as client:
        client.headers.update(bearer(key))
        yield client


def served(api: ApiServer, path: str) -> int:
    """How many requests for `path` the process logged (its access log line)."""
    count = 0
    for line in api.log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        count += entry.get("event") == "request" and entry.get("path") == path
    return count


def by_process(stack: Stack, path: str, total: int) -> list[int]:
    """Requests for `path` each process logged, once all `total` are in the logs."""
    wait_until(lambda: sum(served(api, path) for api in stack.apis) >= total, timeout=30)
    return [served(api, path) for api in stack.apis]


def receive(admin: httpx.Client, store: str, sku: str) -> httpx.Response:
    """A keyed receipt of one unit (sent again once on a broken answer, as a till does)."""
    key = uuid.uuid4().hex
    body = {"lines": [{"sku": sku, "quantity": 1}]}
    for _ in range(2):
        try:
            return admin.post(
                f"/v1/stores/{store}/receipts", json=body, headers={"Idempotency-Key": key}
            )
        except httpx.TransportError:
            continue
    return admin.post(f"/v1/stores/{store}/receipts", json=body, headers={"Idempotency-Key": key})


def test_stores_spread_over_both_processes_each_on_one(stack: Stack, admin: httpx.Client) -> None:
    # Routing reads the path alone: a body the API refuses (422) is routed like a sale.
    stores = [f"r{uuid.uuid4().hex[:12]}" for _ in range(24)]
    for store in stores:
        for _ in range(4):
            refused = admin.post(
                f"/v1/stores/{store}/sales", json={}, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            assert refused.status_code == 422, refused.text

    owners = Counter[int]()
    for store in stores:
        counts = by_process(stack, f"/v1/stores/{store}/sales", 4)
        assert sorted(counts) == [0, 4], (store, counts)
        owners[counts.index(4)] += 1
    assert set(owners) == {0, 1}


def test_a_killed_process_hands_its_stores_to_the_other(
    stack: Stack, admin: httpx.Client, settings: Settings
) -> None:
    store, sku = f"k{uuid.uuid4().hex[:12]}", f"ROUTE-{uuid.uuid4().hex[:6]}"
    store_and_product(admin, settings, store, sku, "Routed tea")
    path = f"/v1/stores/{store}/receipts"
    first = [receive(admin, store, sku).status_code for _ in range(20)]
    counts = by_process(stack, path, 20)
    assert first == [201] * 20
    assert sorted(counts) == [0, 20], counts
    owner = counts.index(20)

    victim, survivor = stack.apis[owner], stack.apis[1 - owner]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(30)
    after = [receive(admin, store, sku).status_code for _ in range(20)]

    assert after == [201] * 20
    assert by_process(stack, path, 40)[1 - owner] == 20
    assert served(survivor, path) == 20
    final = admin.get("/v1/me")
    assert final.status_code == 200, final.text


def raw_answer(stack: Stack, target: bytes, key: str) -> tuple[int, bytes]:
    """The status and head of the answer to a POST whose request target is exactly
    `target` (httpx would normalise it)."""
    context = stack.nginx.tls()
    with (
        socket.create_connection(("127.0.0.1", stack.nginx.https_port), timeout=30) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\n"
            b"Idempotency-Key: " + uuid.uuid4().hex.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        head = tls.recv(4096).partition(b"\r\n\r\n")[0]
    return int(head.split(b" ", 2)[1]), head.lower()


@pytest.mark.parametrize(
    "target",
    [
        b"/v1/stores/%2e%2e/sales",
        b"/v1/stores/../../v1/stores/x/sales",
        b"/v1/stores/%2Fetc%2Fpasswd/sales",
        b"/v1/stores/a%00b/sales",
        b"/v1/me%00",
        b"/v1/stores//sales",
        b"/v1/stores/%E2%80%AEs1/sales",
        b"/v1/stores/" + b"a" * 65 + b"/sales",
        b"/v1/stores/" + b"b" * 6000 + b"/sales",
        b"/v1/stores/s1%0d%0aX-Injected:%201/sales",
        b"/v1/stores/inventory_api/sales",
        b"/v1/stores/127.0.0.1:1/sales",
    ],
)
def test_a_hostile_store_segment_gets_a_4xx_and_breaks_no_other_route(
    stack: Stack, settings: Settings, target: bytes
) -> None:
    key = api_key(settings, Role.ADMIN, ["*"], "routing hostile")
    status, head = raw_answer(stack, target, key)
    assert 400 <= status < 500, (target[:80], status)
    assert b"content-type: application/problem+json" in head, head
    with stack.nginx.client() as client:
        me = client.get("/v1/me", headers=bearer(key))
    assert me.status_code == 200, me.text


def test_the_access_log_names_one_upstream_per_routed_store(stack: Stack) -> None:
    lines = (stack.nginx.logs / "inventory.access.log").read_text().splitlines()
    upstreams: dict[str, set[str]] = {}
    for line in lines:
        entry = json.loads(line)
        if entry["path"].startswith("/v1/stores/r") and entry["path"].endswith("/sales"):
            upstreams.setdefault(entry["path"], set()).add(entry["upstream"])
    assert len(upstreams) == 24
    assert all(len(found) == 1 for found in upstreams.values()), upstreams
    assert len(set().union(*upstreams.values())) == 2


def test_a_request_picks_one_of_two_upstream_names_and_both_list_the_same_servers() -> None:
    shared = (SNIPPETS / "inventory-http.conf").read_text()
    chooser = re.search(r"map \$inventory_store \$inventory_upstream \{(.*?)\}", shared, re.S)
    assert chooser is not None
    values = {line.split()[-1].rstrip(";") for line in chooser[1].strip().splitlines()}
    assert values == {"inventory_api", "inventory_api_by_store"}
    passes = set(re.findall(r"proxy_pass (\S+);", (SNIPPETS / "inventory.conf").read_text()))
    assert passes == {"http://inventory_api", "http://$inventory_upstream"}
    for config in (SITE, NGINX_DIR / "nginx.conf"):
        blocks = dict(re.findall(r"upstream (\w+) \{(.*?)\}", config.read_text(), re.S))
        assert set(blocks) == {"inventory_api", "inventory_api_by_store"}, config
        servers = [re.findall(r"^\s*server .*$", body, re.M) for body in blocks.values()]
        assert servers[0] == servers[1] and len(servers[0]) == 2, config
        assert "hash $inventory_store consistent;" in blocks["inventory_api_by_store"]
