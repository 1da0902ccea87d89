"""Webhook delivery end to end: a real API and worker, and real receivers on 127.0.0.1 that
verify every signature with the `standardwebhooks` package."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import ApiServer
from tests.e2e.reading import Client, Pos, wait_until
from tests.e2e.webhook_receiver import Receiver, receiving
from tests.e2e.webhook_stack import (
    Worker,
    api_beside,
    deliveries,
    open_with_stock,
    primary_events,
    running_worker,
    sell,
    store_seqs,
    subscribe,
    unsubscribe,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def worker(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """The module's worker, on its own Redis namespace, allowed to send to 127.0.0.0/8."""
    folder = Path(tmp_path_factory.mktemp("webhooks"))
    with running_worker(server_env, folder) as running:
        yield running


@pytest.fixture(scope="module")
def api(
    server_env: dict[str, str], worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """The module's API, on the worker's namespace, with the same allowance."""
    with api_beside(server_env, worker, Path(tmp_path_factory.mktemp("webhooks-api"))) as served:
        yield served


def test_a_stores_events_and_alerts_arrive_signed_in_seq_order(
    admin: Client, pos: Pos, settings: Settings, store_id: str
) -> None:
    sku = f"A.{store_id}"
    with receiving(Receiver()) as every, receiving(Receiver()) as alerts_only:
        hook = subscribe(admin, every.url, stores=[store_id], description="everything")
        alerts_hook = subscribe(admin, alerts_only.url, stores=[store_id], types=["alert.opened"])
        every.secrets.append(hook["secret"])
        alerts_only.secrets.append(alerts_hook["secret"])
        open_with_stock(pos, store_id, sku, 10)
        put = admin.post(
            f"/v1/stores/{store_id}/stock/{sku}/reorder-point", {"min": 5}, method="PUT"
        )
        assert put.status_code in (200, 201), put.text
        sell(pos, store_id, sku, 3)
        sell(pos, store_id, sku, 3)  # 4 available, under 5: low stock
        sell(pos, store_id, sku, 10, offline=True)  # -6 on hand: negative stock
        seqs = store_seqs(settings, store_id, primary_events(settings, store_id))
        wait_until(lambda: len(alerts_only.received) >= 2, 60)
        wait_until(lambda: len(every.received) >= len(seqs) + 2, 60)
        log = deliveries(admin, hook["id"])
        unsubscribe(admin, hook["id"])
        unsubscribe(admin, alerts_hook["id"])
    places = [(r.body["data"].get("seq") or r.body["data"]["opened_seq"]) for r in every.received]
    assert places == sorted(places), "deliveries out of seq order"
    assert len(set(every.ids())) == len(every.ids()), "a message sent twice without a failure"
    events = [r.body for r in every.received if r.body["type"] != "alert.opened"]
    assert [event["data"]["seq"] for event in events] == seqs
    assert all(event["type"] == event["data"]["type"] for event in events)
    assert all(r.verified_by == [hook["secret"]] for r in every.received)
    assert all(r.verified_by == [alerts_hook["secret"]] for r in alerts_only.received)
    kinds = [r.body["data"]["kind"] for r in alerts_only.received]
    assert kinds == ["low_stock", "negative_stock"]
    assert [r.body["type"] for r in alerts_only.received] == ["alert.opened"] * 2
    assert kinds == [r.body["data"]["kind"] for r in every.of_type("alert.opened")]
    assert {entry["status"] for entry in log} == {"delivered"}
    assert [entry["webhook_id"] for entry in reversed(log)] == every.ids()


def test_a_failed_delivery_is_retried_under_the_same_webhook_id(
    admin: Client, pos: Pos, store_id: str
) -> None:
    with receiving(Receiver(plan=[500, 302])) as receiver:
        hook = subscribe(admin, receiver.url, stores=[store_id])
        receiver.secrets.append(hook["secret"])
        assert pos.post("/v1/stores", {"id": store_id, "name": "x"}, key=None).status_code == 201
        wait_until(lambda: len(receiver.received) >= 3, 60)
        wait_until(lambda: deliveries(admin, hook["id"])[0]["status"] == "delivered", 30)
        (entry,) = deliveries(admin, hook["id"])
        unsubscribe(admin, hook["id"])
    ids = receiver.ids()
    assert len(set(ids)) == 1, ids  # 500, then a redirect (not followed), then 200
    assert all(r.verified_by for r in receiver.received)
    assert entry["attempts"] == 3
    assert entry["last_status_code"] == 200
    assert entry["next_attempt_at"] is None
    assert entry["webhook_id"] == ids[0]


def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_the_same_id(
    admin: Client, pos: Pos, settings: Settings, worker: Worker, store_id: str
) -> None:
    sku = f"K.{store_id}"
    gate = threading.Event()
    with receiving(Receiver(gate=gate)) as receiver:
        hook = subscribe(admin, receiver.url, stores=[store_id])
        receiver.secrets.append(hook["secret"])
        open_with_stock(pos, store_id, sku, 50)
        assert receiver.held.wait(60), "the first delivery never came"
        worker.kill9()  # while the receiver holds the first message's answer
        gate.set()
        for _ in range(5):
            sell(pos, store_id, sku, 1)
        worker.start()
        seqs = store_seqs(settings, store_id, primary_events(settings, store_id))
        wait_until(lambda: {r.body["data"]["seq"] for r in receiver.received} >= set(seqs), 90)
        unsubscribe(admin, hook["id"])
    by_id: dict[str, set[int]] = {}
    for received in receiver.received:
        by_id.setdefault(received.webhook_id, set()).add(received.body["data"]["seq"])
    assert all(len(places) == 1 for places in by_id.values()), "one id named two events"
    firsts = list(dict.fromkeys(receiver.ids()))
    assert [next(iter(by_id[i])) for i in firsts] == seqs
    assert receiver.ids().count(firsts[0]) >= 2, "the interrupted message was not repeated"
    assert all(r.verified_by for r in receiver.received)


def test_both_secrets_sign_after_a_rotation_and_a_test_delivery_arrives(
    admin: Client, store_id: str
) -> None:
    with receiving(Receiver()) as receiver:
        hook = subscribe(admin, receiver.url, stores=[store_id])
        rotated = admin.post(f"/v1/webhooks/{hook['id']}/rotate-secret", None, idempotent=False)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_") and new != hook["secret"]
        receiver.secrets.extend([hook["secret"], new])
        sent = admin.post(f"/v1/webhooks/{hook['id']}/test", None, idempotent=False)
        assert sent.status_code == 202, sent.text
        wait_until(lambda: len(receiver.received) >= 1, 30)
        unsubscribe(admin, hook["id"])
    (test,) = receiver.received
    assert test.body["type"] == "webhook.test"
    assert test.body["data"] == {"webhook_id": hook["id"]}
    assert sorted(test.verified_by) == sorted([hook["secret"], new])  # each alone verifies
    assert len(test.signature.split(" ")) == 2
    listed = admin.get("/v1/webhooks").json()["items"]
    assert all("secret" not in item for item in listed)


def test_a_target_failing_for_three_days_is_disabled_with_an_alert(
    admin: Client, pos: Pos, settings: Settings, worker: Worker, store_id: str
) -> None:
    with receiving(Receiver(plan=[503] * 100)) as receiver:
        hook = subscribe(admin, receiver.url, stores=[store_id])
        assert pos.post("/v1/stores", {"id": store_id, "name": "x"}, key=None).status_code == 201
        wait_until(lambda: len(receiver.received) >= 1, 60)
        # Three days pass: the first failure is moved back, the next attempt made due.
        with psycopg.connect(settings.primary_admin_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET first_failed_at = now() - interval '3 days 1 min',"
                " next_attempt_at = now() WHERE subscription_id = %s",
                (hook["id"],),
            )
        wait_until(lambda: _status(admin, hook["id"]) == "disabled", 60)
        (entry,) = deliveries(admin, hook["id"])
        unsubscribe(admin, hook["id"])
    assert entry["status"] == "failed"
    assert entry["last_status_code"] == 503
    assert "webhook disabled" in worker.log.read_text()


def _status(admin: Client, webhook_id: str) -> str | None:
    items = admin.get("/v1/webhooks", limit=1000).json()["items"]
    return next((item["status"] for item in items if item["id"] == webhook_id), None)


def test_a_slow_target_does_not_hold_up_another(admin: Client, pos: Pos, store_id: str) -> None:
    sku = f"S.{store_id}"
    with receiving(Receiver(delay=3.0)) as slow, receiving(Receiver()) as fast:
        slow_hook = subscribe(admin, slow.url, stores=[store_id])
        fast_hook = subscribe(admin, fast.url, stores=[store_id])
        open_with_stock(pos, store_id, sku, 10)
        for _ in range(3):
            sell(pos, store_id, sku, 1)
        wait_until(lambda: len(fast.received) >= 6, 60)
        slow_count = len(slow.received)
        unsubscribe(admin, slow_hook["id"])
        unsubscribe(admin, fast_hook["id"])
    assert slow_count < 6  # the slow one has taken at least 18 s to answer all six


def test_a_subscription_to_two_stores_gets_both_in_one_seq_order(
    admin: Client, pos: Pos, settings: Settings, store_id: str
) -> None:
    stores = [store_id, f"{store_id}b"]
    with receiving(Receiver()) as receiver:
        hook = subscribe(admin, receiver.url, stores=stores)
        receiver.secrets.append(hook["secret"])
        for store in stores:
            open_with_stock(pos, store, f"T.{store}", 20)
        for _ in range(4):
            for store in stores:
                sell(pos, store, f"T.{store}", 1)
        expected = sorted(
            seq
            for store in stores
            for seq in store_seqs(settings, store, primary_events(settings, store))
        )
        wait_until(lambda: len(receiver.received) >= len(expected), 60)
        unsubscribe(admin, hook["id"])
    assert [r.body["data"]["seq"] for r in receiver.received] == expected
    assert {r.body["data"]["store"] for r in receiver.received} == set(stores)
