"""The webhook subscription API over HTTP: the SSRF guard at create time, URL and type
checks, and store scope (who may subscribe to, see and change which webhooks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, api_servers, open_store
from tests.e2e.reading import Client
from tests.e2e.webhook_stack import LOOPBACK, subscribe, unsubscribe

pytestmark = pytest.mark.e2e

API_ENV = LOOPBACK  # as the tests set it: 127.0.0.0/8 only, so [::1] stays refused


def refused(client: Client, url: str) -> tuple[int, str]:
    """The status and code of an attempt to subscribe `url`."""
    response = client.post("/v1/webhooks", {"url": url}, idempotent=False)
    body: dict[str, Any] = response.json()
    return response.status_code, body.get("code", "")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.0.0.1/hook", "unsafe_webhook_target"),
        ("http://169.254.169.254/latest/meta-data/", "unsafe_webhook_target"),
        ("http://[fd00:ec2::254]/", "unsafe_webhook_target"),
        ("http://[::1]:8080/hook", "unsafe_webhook_target"),
        ("http://[::ffff:10.0.0.1]/hook", "unsafe_webhook_target"),
        ("http://192.168.1.10/hook", "unsafe_webhook_target"),
        ("http://100.64.0.1/hook", "unsafe_webhook_target"),
        ("http://224.0.0.1/hook", "unsafe_webhook_target"),
        ("http://0.0.0.0/hook", "unsafe_webhook_target"),
        ("ftp://127.0.0.1/hook", "invalid_webhook_url"),
        ("http://user:secret@127.0.0.1/hook", "invalid_webhook_url"),
        ("http://127.0.0.1:99999/hook", "invalid_webhook_url"),
        ("http:///hook", "invalid_webhook_url"),
        ("http://127.0.0.1/a b", "invalid_webhook_url"),
        ("http://no-such-host.invalid/hook", "unresolvable_webhook_target"),
        (f"http://127.0.0.1/{'a' * 2100}", "validation_failed"),
    ],
)
def test_an_unsafe_or_malformed_target_is_refused_with_a_stable_code(
    admin: Client, url: str, code: str
) -> None:
    assert refused(admin, url) == (422, code)


def test_loopback_and_a_name_resolving_to_it_are_refused_without_the_allowance(
    server_env: dict[str, str], admin_key: str, tmp_path: Path
) -> None:
    with api_servers(server_env, tmp_path, count=1) as (bare,):
        client = Client(bare, admin_key)
        assert refused(client, "http://127.0.0.1:9/hook") == (422, "unsafe_webhook_target")
        assert refused(client, "http://localhost:9/hook") == (422, "unsafe_webhook_target")


def test_types_must_be_known_and_fields_expected(admin: Client) -> None:
    url = "http://127.0.0.1:9/hook"
    assert refused(admin, url) != (422, "unsafe_webhook_target")  # allowed here
    bad_type = admin.post("/v1/webhooks", {"url": url, "types": ["stock.teleported"]})
    assert (bad_type.status_code, bad_type.json()["code"]) == (422, "validation_failed")
    unknown = admin.post("/v1/webhooks", {"url": url, "headers": {}})
    assert unknown.status_code == 422, unknown.text
    for item in admin.get("/v1/webhooks", limit=1000).json()["items"]:
        if item["url"] == url:
            unsubscribe(admin, item["id"])


def test_a_manager_subscribes_sees_and_changes_only_webhooks_of_its_stores(
    api: ApiServer, admin: Client, settings: Settings, store_id: str
) -> None:
    other = f"{store_id}o"
    for store in (store_id, other):
        open_store(settings, store)
    manager = Client(api, api_key(settings, Role.MANAGER, [store_id], "webhook manager"))
    clerk = Client(api, api_key(settings, Role.CLERK, [store_id], "webhook clerk"))
    url = "http://127.0.0.1:9/hook"
    own = subscribe(manager, url)
    assert own["stores"] == [store_id]
    assert own["types"] is None
    assert own["secret"].startswith("whsec_")
    for stores in ([other], ["*"], [store_id, other]):
        response = manager.post("/v1/webhooks", {"url": url, "stores": stores}, idempotent=False)
        assert response.status_code == 403, response.text
    everywhere = subscribe(admin, url, stores=["*"])
    elsewhere = subscribe(admin, url, stores=[other])
    seen = {item["id"] for item in manager.get("/v1/webhooks", limit=1000).json()["items"]}
    assert own["id"] in seen
    assert not seen & {everywhere["id"], elsewhere["id"]}
    for hidden in (everywhere["id"], elsewhere["id"]):
        for path in ("", "/deliveries"):
            assert manager.get(f"/v1/webhooks/{hidden}{path}").status_code in (404, 405)
        for action in ("rotate-secret", "test"):
            posted = manager.post(f"/v1/webhooks/{hidden}/{action}", None, idempotent=False)
            assert posted.status_code == 404, posted.text
        gone = manager.post(f"/v1/webhooks/{hidden}", None, idempotent=False, method="DELETE")
        assert gone.status_code == 404, gone.text
    assert clerk.get("/v1/webhooks").status_code == 403
    admin_seen = {item["id"] for item in admin.get("/v1/webhooks", limit=1000).json()["items"]}
    assert {own["id"], everywhere["id"], elsewhere["id"]} <= admin_seen
    deleted = manager.post(f"/v1/webhooks/{own['id']}", None, idempotent=False, method="DELETE")
    assert deleted.status_code == 204, deleted.text
    assert manager.get(f"/v1/webhooks/{own['id']}/deliveries").status_code == 404
    unsubscribe(admin, everywhere["id"])
    unsubscribe(admin, elsewhere["id"])
