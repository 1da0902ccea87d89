"""`inventory audit verify` as a real process: a whole history passes, each kind of damage
is found and named. The damage is done (and undone) as the servers' owners, on one test
store's rows only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from inventory.domain.commands import (
    Line,
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    RecordSale,
    RegisterProduct,
)
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, run_commands
from tests.e2e.processes import inventory
from tests.e2e.reading import Client, primary_positions, replicated, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def history(settings: Settings, store_id: str) -> str:
    """A store with a product, a receipt and two sales, replicated; its stock stream."""
    now = datetime.now(UTC)
    sku = f"A.{store_id}"
    run_commands(
        settings,
        OpenStore(store_id=store_id, name=store_id, now=now),
        RegisterProduct(sku=sku, name=sku, now=now),
        ReceiveStock(
            store_id=store_id,
            lines=(ReceiptLine(sku=sku, quantity=Decimal(10)),),
            occurred_at=now,
            now=now,
        ),
        *(
            RecordSale(
                store_id=store_id,
                sale_id=f"sale{n}",
                lines=(Line(sku=sku, quantity=Decimal(2)),),
                occurred_at=now,
                now=now,
            )
            for n in range(2)
        ),
    )
    positions = primary_positions(settings.primary_url, [store_id])
    wait_until(lambda: replicated(settings.replica_url, positions))
    return f"stock-{store_id}-{sku}"


def verify(server_env: dict[str, str], store: str) -> subprocess.CompletedProcess[str]:
    return inventory("audit", "verify", "--store", store, "--wait", "0.5", env=server_env)


@contextmanager
def changed(url: str, change: str, undo: str, params: tuple[object, ...]) -> Iterator[None]:
    """Run `change` as the server's owner (its replication role set to replica, so the
    events copy's guard lets it through), then `undo` whatever happens."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(change, params)
        try:
            yield
        finally:
            conn.execute(undo, params)


def test_a_whole_history_is_verified(
    settings: Settings, server_env: dict[str, str], store_id: str, history: str
) -> None:
    done = verify(server_env, store_id)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    events = len(primary_positions(settings.primary_url, [store_id]))
    assert lines[0] == f"inventory audit verify: store {store_id}, {events} events on the primary"
    checks = {line.split()[0]: line.split()[1] for line in lines[1:-1]}
    assert checks == dict.fromkeys(
        ["versions", "events", "states", "chains", "signed", "replica", "order", "stalls"], "ok"
    )
    assert "the history is whole" in lines[-1]


def test_a_stored_state_that_is_not_the_fold_of_its_events_is_found(
    settings: Settings, server_env: dict[str, str], store_id: str, history: str
) -> None:
    with changed(
        settings.primary_admin_url,
        "UPDATE streams SET state = jsonb_set(state, '{reorder_min}', '7') WHERE stream = %s",
        "UPDATE streams SET state = state - 'reorder_min' WHERE stream = %s",
        (history,),
    ):
        done = verify(server_env, store_id)
    assert done.returncode == 1
    assert "states    FAILED (1)" in done.stdout
    assert f"{history}: the stored state is not the fold of its events" in done.stdout
    assert verify(server_env, store_id).returncode == 0  # undone


def test_a_head_that_disagrees_with_the_events_is_found(
    settings: Settings, server_env: dict[str, str], store_id: str, history: str
) -> None:
    with changed(
        settings.primary_admin_url,
        "UPDATE streams SET version = version + 1 WHERE stream = %s",
        "UPDATE streams SET version = version - 1 WHERE stream = %s",
        (history,),
    ):
        done = verify(server_env, store_id)
    assert done.returncode == 1
    assert "versions  FAILED (1)" in done.stdout
    assert f"{history}: events end at version 3, streams says 4" in done.stdout


def test_an_event_changed_on_the_replica_is_found_by_position(
    settings: Settings, server_env: dict[str, str], store_id: str, history: str
) -> None:
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute(
            "SELECT position FROM events WHERE stream = %s AND version = 2", (history,)
        ).fetchone()
    assert row is not None
    with changed(
        settings.replica_admin_url,
        "UPDATE events SET metadata = metadata || '{\"forged\": true}' WHERE position = %s",
        "UPDATE events SET metadata = metadata - 'forged' WHERE position = %s",
        (row[0],),
    ):
        done = verify(server_env, store_id)
    assert done.returncode == 1
    assert "replica   FAILED (1)" in done.stdout
    assert f"position {row[0]}: differs on the replica" in done.stdout
    others = [line for line in done.stdout.splitlines()[1:8] if "FAILED" in line]
    assert len(others) == 1  # nothing else is blamed


def test_a_bad_wait_is_refused(server_env: dict[str, str]) -> None:
    done = inventory("audit", "verify", "--wait", "-1", env=server_env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "inventory audit: error: --wait must be a number of seconds, 0 or more"
    )


@contextmanager
def edited_on_the_primary(url: str, position: int, quantity: str) -> Iterator[str]:
    """Set a sale's quantity in place as the primary's superuser, past the append-only
    guard (disabled inside the one transaction that edits), then put it back. Updates are
    not published: the replica keeps the original. Yields the original quantity."""
    edit = (
        "UPDATE events SET data = jsonb_set(data, '{quantity}', to_jsonb(%s::text))"
        " WHERE position = %s RETURNING (SELECT data ->> 'quantity' FROM events"
        " WHERE position = %s)"
    )

    def change(value: str) -> str:
        with psycopg.connect(url) as conn:
            conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_delete")
            row = conn.execute(edit, (value, position, position)).fetchone()
            conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete")
        assert row is not None
        return str(row[0])

    original = change(quantity)
    try:
        yield original
    finally:
        change(original)


def first_sale(settings: Settings, store: str) -> int:
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute(
            "SELECT position FROM events WHERE store = %s AND type = 'stock.sold'"
            " ORDER BY position LIMIT 1",
            (store,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_quantity_edited_in_place_on_the_primary_is_named(
    settings: Settings, server_env: dict[str, str], store_id: str, history: str
) -> None:
    sale = first_sale(settings, store_id)

    with edited_on_the_primary(settings.primary_admin_url, sale, "1") as original:
        done = verify(server_env, store_id)

    assert original == "2"
    assert done.returncode == 1
    assert "chains    FAILED (1)" in done.stdout
    assert f"{store_id}: position {sale} ({history} v2, stock.sold" in done.stdout
    assert verify(server_env, store_id).returncode == 0  # put back


def test_a_checkpoint_catches_a_history_rewritten_with_its_chain(
    settings: Settings, server_env: dict[str, str], store_id: str, history: str, tmp_path: Path
) -> None:
    env = {**server_env, "INVENTORY_AUDIT_CHECKPOINT_DIR": str(tmp_path)}
    taken = inventory("audit", "checkpoint", env=env)
    assert taken.returncode == 0, taken.stderr
    assert f"checkpoint written: {tmp_path}/checkpoint-" in taken.stdout
    sale = first_sale(settings, store_id)

    with edited_on_the_primary(settings.primary_admin_url, sale, "1"):
        relinked(settings.primary_admin_url, store_id)
        done = inventory("audit", "verify", "--store", store_id, "--wait", "0.5", env=env)
    relinked(settings.primary_admin_url, store_id)

    assert done.returncode == 1
    assert "chains    ok" in done.stdout  # every link recomputed: only the checkpoint tells
    assert "signed    FAILED (1)" in done.stdout
    assert "the history up to it was rewritten" in done.stdout
    assert (
        inventory("audit", "verify", "--store", store_id, "--wait", "0.5", env=env).returncode == 0
    )


def relinked(url: str, store: str) -> None:
    """Recompute every chain link of `store`, as a superuser who knows the scheme would
    after an edit."""
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_delete")
        rows = conn.execute(
            "SELECT position FROM events WHERE store = %s ORDER BY position", (store,)
        ).fetchall()
        link = "0" * 64
        for (position,) in rows:
            found = conn.execute(
                "UPDATE events SET chain = event_link(%s, id, stream, version, type, store, sku,"
                " occurred_at, recorded_at, data, metadata) WHERE position = %s RETURNING chain",
                (link, position),
            ).fetchone()
            assert found is not None
            link = found[0]
        conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete")


def test_the_api_names_the_edited_event_to_an_auditor_of_the_store(
    settings: Settings, api: ApiServer, store_id: str, history: str
) -> None:
    auditor = Client(api, api_key(settings, Role.AUDITOR, [store_id], "chain auditor"))
    stranger = Client(api, api_key(settings, Role.AUDITOR, [f"{store_id}x"], "other auditor"))
    clerk = Client(api, api_key(settings, Role.CLERK, [store_id], "chain clerk"))
    sale = first_sale(settings, store_id)

    whole = auditor.get("/v1/audit/verify", store=store_id)
    with edited_on_the_primary(settings.primary_admin_url, sale, "1"):
        broken = auditor.get("/v1/audit/verify", store=store_id)

    assert whole.status_code == 200, whole.text
    assert whole.json()["verified"] is True
    assert whole.json()["events"] == len(primary_positions(settings.primary_url, [store_id]))
    assert broken.status_code == 200
    assert broken.json()["verified"] is False
    assert broken.json()["first_mismatch"]["position"] == sale
    assert broken.json()["first_mismatch"]["stream"] == history
    assert stranger.get("/v1/audit/verify", store=store_id).status_code == 403
    assert clerk.get("/v1/audit/verify", store=store_id).status_code == 403
    missing = auditor.get("/v1/audit/verify")
    assert missing.status_code == 422
    assert missing.json()["code"] == "validation_failed"
