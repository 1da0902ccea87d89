"""`inventory events export` as a real process against the session's replica."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from inventory.domain.commands import OpenStore, ReceiptLine, ReceiveStock, RegisterProduct
from inventory.runtime.settings import Settings
from tests.e2e.api_servers import run_commands
from tests.e2e.processes import inventory
from tests.e2e.reading import primary_positions, replicated, wait_until

pytestmark = pytest.mark.e2e


def last_midnight() -> datetime:
    """00:00 UTC today, read when a test runs: a suite crossing midnight sees its own day."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def receipts(
    settings: Settings, store: str, sku: str, days: int, midnight: datetime | None = None
) -> None:
    """A store with one receipt at noon on each of the `days` days before `midnight`
    (the last one, read now, unless given)."""
    now = datetime.now(UTC)
    midnight = midnight or last_midnight()
    run_commands(
        settings,
        OpenStore(store_id=store, name=store, now=now),
        RegisterProduct(sku=sku, name=sku, now=now),
        *(
            ReceiveStock(
                store_id=store,
                lines=(ReceiptLine(sku=sku, quantity=Decimal(day + 1)),),
                occurred_at=midnight - timedelta(days=day, hours=12),
                now=now,
            )
            for day in range(days)
        ),
    )


def expected_seqs(settings: Settings, store: str, start: datetime, end: datetime) -> list[int]:
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT seq FROM events WHERE store = %s AND occurred_at >= %s AND occurred_at < %s"
            " ORDER BY seq",
            (store, start, end),
        ).fetchall()
    return [row[0] for row in rows]


def test_an_export_writes_the_store_s_events_in_the_range_as_ndjson_in_seq_order(
    settings: Settings, server_env: dict[str, str], store_id: str, tmp_path: Path
) -> None:
    sku = f"X.{store_id}"
    midnight = last_midnight()
    receipts(settings, store_id, sku, days=5, midnight=midnight)
    receipts(settings, f"{store_id}n", sku, days=5, midnight=midnight)  # a neighbour's stay out
    positions = primary_positions(settings.primary_url, [store_id, f"{store_id}n"])
    wait_until(lambda: replicated(settings.replica_url, positions))
    start, end = midnight - timedelta(days=3), midnight - timedelta(days=1)
    target = tmp_path / "events.ndjson"

    done = inventory(
        "events",
        "export",
        "--store",
        store_id,
        "--from",
        start.isoformat(),
        "--to",
        end.date().isoformat(),
        "--output",
        str(target),
        env=server_env,
    )

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["seq"] for line in lines] == expected_seqs(settings, store_id, start, end)
    assert [line["data"]["quantity"] for line in lines] in (["2", "3"], [2, 3])
    assert {line["store"] for line in lines} == {store_id}
    assert set(lines[0]) == {
        "seq",
        "position",
        "id",
        "chain",
        "stream",
        "version",
        "type",
        "store",
        "sku",
        "occurred_at",
        "recorded_at",
        "data",
        "metadata",
    }
    assert "exported 2 events" in done.stderr
    assert not list(tmp_path.glob(".*partial"))


def test_an_export_to_stdout_and_a_bad_time_is_refused(
    settings: Settings, server_env: dict[str, str], store_id: str
) -> None:
    receipts(settings, store_id, f"Y.{store_id}", days=2)
    positions = primary_positions(settings.primary_url, [store_id])
    wait_until(lambda: replicated(settings.replica_url, positions))

    everything = inventory(
        "events",
        "export",
        "--store",
        store_id,
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        env=server_env,
    )
    refused = inventory(
        "events",
        "export",
        "--store",
        store_id,
        "--from",
        "yesterday",
        "--to",
        "2100-01-01",
        env=server_env,
    )

    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert len(lines) == len(
        expected_seqs(
            settings, store_id, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        )
    )
    assert [json.loads(line)["type"] for line in lines][-2:] == ["stock.received"] * 2
    assert refused.returncode == 2
    assert "not an RFC 3339 time" in refused.stderr


VERIFIER = Path(__file__).resolve().parents[2] / "ops" / "verify_chain.py"


def offline(path: Path) -> subprocess.CompletedProcess[str]:
    """The documented offline verifier, as an auditor runs it: plain python3, no package."""
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_whole_export_verifies_offline_and_an_edited_line_is_named(
    settings: Settings, server_env: dict[str, str], store_id: str, tmp_path: Path
) -> None:
    receipts(settings, store_id, f"Z.{store_id}", days=4)
    positions = primary_positions(settings.primary_url, [store_id])
    wait_until(lambda: replicated(settings.replica_url, positions))
    target = tmp_path / "whole.ndjson"
    done = inventory(
        "events",
        "export",
        "--store",
        store_id,
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--output",
        str(target),
        env=server_env,
    )
    assert done.returncode == 0, done.stderr

    whole = offline(target)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    forged = dict(lines[2], data={**lines[2]["data"], "quantity": "300"})
    edited = tmp_path / "edited.ndjson"
    edited.write_text("".join(json.dumps(line) + "\n" for line in [*lines[:2], forged, *lines[3:]]))
    dropped = tmp_path / "dropped.ndjson"
    dropped.write_text("".join(json.dumps(line) + "\n" for line in [*lines[:1], *lines[2:]]))

    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert whole.stdout.startswith(f"{len(positions)} events verified; {store_id} ends at ")
    assert offline(edited).returncode == 1
    assert f"chain broken at position {lines[2]['position']}" in offline(edited).stdout
    assert f"chain broken at position {lines[2]['position']}" in offline(dropped).stdout
