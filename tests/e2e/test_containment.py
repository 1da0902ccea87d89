"""Containment: an event a projector cannot apply stalls its store only, is named by
health, metrics and the audit, and after the fix a restart catches up with nothing lost.

"A projector bug" is a trigger on the replica's stock ledger that raises for one store's
SKU (installed as the replica's admin); "its fix" is dropping it. An event whose JSON no
projector can decode is appended straight into the primary's events table by its
superuser. On servers of their own: a stall fails `/health/ready` for everyone.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.conftest import fresh_topology
from tests.e2e.api_servers import ApiServer, api_key, api_servers
from tests.e2e.processes import inventory
from tests.e2e.reading import Client, start_worker, wait_until

pytestmark = pytest.mark.e2e

BUG = "a projector bug (test)"
INSTALL_BUG = """
CREATE FUNCTION test_projector_bug() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{bug}';
END
$$;
CREATE TRIGGER test_projector_bug BEFORE INSERT ON stock_ledger FOR EACH ROW
    WHEN (NEW.store = '{store}' AND NEW.sku = 'A') EXECUTE FUNCTION test_projector_bug();
"""
FIX_BUG = "DROP TRIGGER test_projector_bug ON stock_ledger; DROP FUNCTION test_projector_bug()"
# Every read model of a list of stores, as a rebuild must reproduce it.
READ_MODELS = {
    "stock_levels": "SELECT * FROM stock_levels WHERE store = ANY(%s) ORDER BY store, sku",
    "stock_ledger": "SELECT * FROM stock_ledger WHERE store = ANY(%s) ORDER BY seq",
    "alerts": "SELECT store, sku, kind, opened_seq, opened_at, closed_seq, closed_at, details"
    " FROM alerts WHERE store = ANY(%s) ORDER BY store, sku, kind, opened_seq",
    "daily_movements": "SELECT store, day, sku, type, count, quantity FROM daily_movements"
    " WHERE store = ANY(%s)"
    " ORDER BY store, day, sku, type",
    "stream_heads": "SELECT stream, partition, version, last_seq FROM stream_heads"
    " WHERE partition = ANY(%s) ORDER BY stream",
}


@pytest.fixture(scope="module")
def own_topology() -> Iterator[EmbeddedTopology]:
    with fresh_topology() as servers:
        yield servers


@pytest.fixture(scope="module")
def env(own_topology: EmbeddedTopology) -> dict[str, str]:
    return own_topology.environment()


@pytest.fixture(scope="module")
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({**os.environ, **env})


class Running:
    """One API process and one worker on the module's servers, sharing a namespace."""

    def __init__(self, env: dict[str, str], folder: Path, api: ApiServer, key: str) -> None:
        self.env, self.folder, self.api = env, folder, api
        self.namespace = api.env["INVENTORY_REDIS_NAMESPACE"]
        self.client = Client(api, key)
        self.worker = start_worker(env, self.namespace, folder / "worker.log")

    def restart_worker(self) -> None:
        """SIGTERM the worker, wait for it, start a new one."""
        self.worker.terminate()
        self.worker.wait(30)
        self.worker = start_worker(self.env, self.namespace, self.folder / "worker.log")

    def stop(self) -> None:
        """Stop the worker."""
        self.worker.terminate()
        self.worker.wait(30)


@pytest.fixture
def running(env: dict[str, str], settings: Settings, tmp_path: Path) -> Iterator[Running]:
    key = api_key(settings, Role.ADMIN, ["*"], "containment")
    with api_servers(env, tmp_path, count=1) as apis:
        started = Running(env, tmp_path, apis[0], key)
        try:
            yield started
        finally:
            started.stop()


def _stores(client: Client, *stores: str, timezone: str = "UTC") -> int:
    """Open the stores, register A and B, receive 100 of each in every store."""
    for sku in ("A", "B"):  # the second test finds them registered
        assert client.post("/v1/products", {"sku": sku, "name": sku}).status_code in {201, 409}
    position = 0
    for store in stores:
        body = {"id": store, "name": store, "timezone": timezone}
        assert client.post("/v1/stores", body).status_code == 201
        lines = [{"sku": "A", "quantity": 100}, {"sku": "B", "quantity": 100}]
        position = client.command(f"/v1/stores/{store}/receipts", {"lines": lines})
    return position


def _sell(client: Client, store: str, sku: str, quantity: int = 1) -> int:
    body = {"sale_id": uuid.uuid4().hex[:12], "lines": [{"sku": sku, "quantity": quantity}]}
    return client.command(f"/v1/stores/{store}/sales", body)


def _stock(client: Client, store: str, position: int) -> httpx.Response:
    return client.get(f"/v1/stores/{store}/stock", min_position=position)


def _on_hand(response: httpx.Response) -> dict[str, float]:
    assert response.status_code == 200, response.text
    return {item["sku"]: float(item["on_hand"]) for item in response.json()["items"]}


def _seq(settings: Settings, position: int) -> int:
    with psycopg.connect(settings.replica_url) as conn:
        row = conn.execute("SELECT seq FROM events WHERE position = %s", (position,)).fetchone()
    assert row is not None
    return int(row[0])


def _sold(settings: Settings, store: str, sku: str) -> tuple[int, int]:
    """(seq, position) of the item's last `stock.sold` (a sale's result names its last
    event, the sale document's)."""
    with psycopg.connect(settings.replica_url) as conn:
        row = conn.execute(
            "SELECT seq, position FROM events WHERE stream = %s AND type = 'stock.sold'"
            " ORDER BY seq DESC LIMIT 1",
            (f"stock-{store}-{sku}",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _checkpoint(settings: Settings, store: str, projector: str = "stock") -> int:
    with psycopg.connect(settings.replica_url) as conn:
        row = conn.execute(
            "SELECT seq FROM projector_checkpoints WHERE projector = %s AND partition = %s",
            (projector, store),
        ).fetchone()
    return int(row[0]) if row else 0


def _stalls_of(api: ApiServer, store: str) -> list[dict[str, Any]]:
    """The stalls of `store` that /health/ready names (none while it is not failing)."""
    ready = httpx.get(f"{api.base_url}/health/ready", timeout=10).json()
    check = ready["checks"]["projections"]
    stalls = (check.get("detail") or {}).get("stalls", [])
    return [stall for stall in stalls if stall["store"] == store]


def _read_models(settings: Settings, stores: list[str]) -> dict[str, list[Any]]:
    with psycopg.connect(settings.replica_url) as conn:
        return {
            name: conn.execute(query, (stores,)).fetchall() for name, query in READ_MODELS.items()
        }


def _audit(env: dict[str, str], store: str) -> subprocess.CompletedProcess[str]:
    return inventory("audit", "verify", "--store", store, "--wait", "2", env=env)


def test_a_projector_bug_stalls_one_store_and_a_fix_and_a_restart_lose_nothing(
    env: dict[str, str], settings: Settings, running: Running
) -> None:
    sick, well = (f"s{uuid.uuid4().hex[:8]}" for _ in range(2))
    client = running.client
    _on_hand(_stock(client, well, _stores(client, sick, well)))
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as admin:
        admin.execute(INSTALL_BUG.format(bug=BUG, store=sick).encode())

    before = _sell(client, sick, "B")
    poison = _sell(client, sick, "A", 2)
    after = _sell(client, sick, "B", 3)
    well_sales = [_sell(client, well, sku) for sku in ("A", "B", "A")]

    # The sick store stops at the event: what came before it is projected, nothing after.
    wait_until(lambda: bool(_stalls_of(running.api, sick)), timeout=60)
    assert _on_hand(_stock(client, sick, before)) == {"A": 100, "B": 99}
    lagging = _stock(client, sick, poison)
    assert lagging.status_code == 503
    assert lagging.json()["code"] == "read_model_lagging"
    assert _checkpoint(settings, sick) == _seq(settings, before)
    # Every other store goes on, before and after the stall was found.
    assert _on_hand(_stock(client, well, well_sales[-1])) == {"A": 98, "B": 99}
    later = _sell(client, well, "B", 5)
    assert _on_hand(_stock(client, well, later)) == {"A": 98, "B": 94}

    # Health names the projector, the store, the event and the error.
    (stall,) = _stalls_of(running.api, sick)
    seq, position = _sold(settings, sick, "A")
    assert {
        key: stall[key] for key in ("projector", "store", "seq", "position", "stream", "type")
    } == {
        "projector": "stock",
        "store": sick,
        "seq": seq,
        "position": position,
        "stream": f"stock-{sick}-A",
        "type": "stock.sold",
    }
    assert stall["error_class"] == "psycopg.errors.RaiseException"
    assert stall["error"] == f"[P0001] {BUG}"
    ready = httpx.get(f"{running.api.base_url}/health/ready", timeout=10)
    assert ready.status_code == 503
    assert (
        f"projector stock stalled in store {sick} at event seq {stall['seq']}"
        in (ready.json()["checks"]["projections"]["error"])
    )
    # So do the metrics, with ids only.
    metrics = httpx.get(f"{running.api.base_url}/metrics", timeout=10).text
    prefix = "inventory_projection_stalled{"
    series = [
        line
        for line in metrics.splitlines()
        if line.startswith(prefix) and f'store="{sick}"' in line
    ]
    assert len(series) == 1
    for label in (
        f'seq="{seq}"',
        f'position="{position}"',
        'type="stock.sold"',
        f'stream="stock-{sick}-A"',
        'projector="stock"',
        'error_class="psycopg.errors.RaiseException"',
    ):
        assert label in series[0]
    assert series[0].endswith(" 1.0")
    assert re.search(
        rf'inventory_projection_stall_attempts{{projector="stock",store="{sick}"}} ', metrics
    )

    # The history keeps serving, the stalled event and those after it included.
    history = client.get("/v1/events", store=sick, limit=1000)
    assert history.status_code == 200
    assert {position, poison, after} <= {event["position"] for event in history.json()["items"]}

    # The audit reports the stall, and only for the sick store.
    audited = _audit(env, sick)
    assert audited.returncode == 1, audited.stdout + audited.stderr
    assert "stalls    FAILED (1)" in audited.stdout
    assert f"projector stock stalled in store {sick} at event seq {stall['seq']}" in audited.stdout
    for check in ("versions", "events", "states", "replica", "order"):
        assert re.search(rf"^  {check} +ok ", audited.stdout, re.MULTILINE), audited.stdout
    assert _audit(env, well).returncode == 0
    status = inventory("projections", "status", env=env)
    assert status.returncode == 0
    assert f"STALLED: projector stock stalled in store {sick} at event seq {seq} " in status.stdout

    # The fix ships; the restarted worker catches the store up from its checkpoint.
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as admin:
        admin.execute(FIX_BUG)
    running.restart_worker()
    wait_until(lambda: _stock(client, sick, after).status_code == 200, timeout=60)
    assert _on_hand(_stock(client, sick, after)) == {"A": 98, "B": 96}
    wait_until(lambda: not _stalls_of(running.api, sick), timeout=30)
    with psycopg.connect(settings.replica_url) as conn:
        left = conn.execute("SELECT count(*) FROM projection_stalls WHERE partition = %s", (sick,))
        assert left.fetchone() == (0,)
    assert _audit(env, sick).returncode == 0

    # Nothing lost: the read models equal a rebuild from every event.
    caught_up = _read_models(settings, [sick, well])
    assert len(caught_up["stock_ledger"]) == 2 * 2 + 3 + 4
    rebuilt = inventory("projections", "rebuild", "--all", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _read_models(settings, [sick, well]) == caught_up


UNDECODABLE = """
INSERT INTO events (id, stream, version, type, store, sku, data, metadata, occurred_at)
VALUES (gen_random_uuid(), %s, 1, 'stock.sold', %s, 'Z', '{"quantity": "many"}', '{}', now())
RETURNING position
"""


def test_an_event_no_projector_can_decode_stalls_its_store_only(
    env: dict[str, str], settings: Settings, running: Running
) -> None:
    bad, good = (f"s{uuid.uuid4().hex[:8]}" for _ in range(2))
    client = running.client
    _on_hand(_stock(client, good, _stores(client, bad, good)))
    # Below the API: its superuser writes the primary's events table directly.
    with psycopg.connect(settings.primary_admin_url, autocommit=True) as admin:
        row = admin.execute(UNDECODABLE, (f"stock-{bad}-Z", bad)).fetchone()
    assert row is not None
    poison = int(row[0])
    after = _sell(client, bad, "A")
    sold = _sell(client, good, "A", 4)

    # Found by the sweep (nothing woke the worker for it), and named.
    wait_until(lambda: bool(_stalls_of(running.api, bad)), timeout=60)
    stalled = {stall["projector"]: stall for stall in _stalls_of(running.api, bad)}
    assert set(stalled) == {"stock", "daily_movements"}  # stream_heads does not decode
    for stall in stalled.values():
        assert (stall["position"], stall["type"]) == (poison, "stock.sold")
        assert stall["error_class"] == "msgspec.ValidationError"
        assert "many" not in stall["error"]  # the event's data is not copied
    assert _checkpoint(settings, bad, "stream_heads") >= _seq(settings, poison)
    assert _checkpoint(settings, bad) < _seq(settings, poison)
    assert _stock(client, bad, after).status_code == 503

    # The other store lives; the history serves both.
    assert _on_hand(_stock(client, good, sold)) == {"A": 96, "B": 100}
    assert _on_hand(_stock(client, good, _sell(client, good, "B"))) == {"A": 96, "B": 99}
    history = client.get("/v1/events", store=bad, limit=1000)
    assert history.status_code == 200
    assert {poison, after} <= {event["position"] for event in history.json()["items"]}
    audited = _audit(env, bad)
    assert audited.returncode == 1
    assert "stalls    FAILED (2)" in audited.stdout

    # Wake-ups keep coming for the stalled store; the worker retries it on its back-off
    # (doubling delays: attempts grow with the log of the time stalled), not on each one.
    last = max(_sell(client, bad, "B") for _ in range(15))
    assert _stock(client, bad, last).status_code == 503
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT attempts, extract(epoch FROM clock_timestamp() - first_failed_at)::float8"
            " FROM projection_stalls WHERE partition = %s",
            (bad,),
        ).fetchall()
    assert len(rows) == 2
    for attempts, stalled_for in rows:
        assert attempts <= 3 + math.log2(1 + stalled_for), (attempts, stalled_for)


YEAR_ONE = """
INSERT INTO events (id, stream, version, type, store, sku, data, metadata, occurred_at)
SELECT gen_random_uuid(), %(stream)s, 1, type, store, 'Y',
       data || '{"sku": "Y", "occurred_at": "0001-01-01T00:00:00Z"}', metadata,
       '0001-01-01T00:00:00Z'
FROM events WHERE position = %(model)s
RETURNING position
"""


def test_a_sale_dated_year_one_below_the_api_projects_on_the_calendars_first_day(
    env: dict[str, str], settings: Settings, running: Running
) -> None:
    bad, good = (f"s{uuid.uuid4().hex[:8]}" for _ in range(2))
    client = running.client
    # West of UTC, the first day of year 1 falls in year 0, which Python has not.
    _on_hand(_stock(client, good, _stores(client, bad, good, timezone="America/New_York")))
    _on_hand(_stock(client, bad, _sell(client, bad, "A")))
    _, model = _sold(settings, bad, "A")
    # The bug this containment was measured on (it stalled daily_movements with an
    # OverflowError): the window refuses such a date now, so the event is written below
    # it, a copy of a real sale dated 0001-01-01, as one stored before the window was.
    with psycopg.connect(settings.primary_admin_url, autocommit=True) as admin:
        row = admin.execute(YEAR_ONE, {"stream": f"stock-{bad}-Y", "model": model}).fetchone()
    assert row is not None
    after = _sell(client, bad, "B")

    # Every read model took it: the year-1 sale of Y stands in the levels too.
    assert _on_hand(_stock(client, bad, after)) == {"A": 99, "B": 99, "Y": -1}
    assert _stalls_of(running.api, bad) == []
    assert _on_hand(_stock(client, good, _sell(client, good, "A", 3))) == {"A": 97, "B": 100}
    # The audit rightly names the stream written below the event store (no head row).
    audited = _audit(env, bad)
    assert "stock-" + bad + "-Y: has events but no stored state" in audited.stdout
