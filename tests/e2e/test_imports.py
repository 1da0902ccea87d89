"""Bulk import end to end: the CLI and `POST /v1/imports` on real servers, read back on the
read side; bad rows with their lines while good rows land; a re-import and a worker killed
mid-job change nothing twice; store scope, 413 and 415."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from inventory.domain.authority import Authority
from inventory.imports.decisions import Scope
from inventory.imports.importer import Importer, Report, file_sha
from inventory.imports.rows import row_plan
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, open_store
from tests.e2e.processes import inventory
from tests.e2e.reading import Client, start_worker, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def worker(api: ApiServer) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The module's workers (a list, so a test may kill one and start another), on the
    API's namespace, handing over a silent running job after 2 s."""
    running = [_start_worker(api)]
    yield running
    for process in running:
        process.terminate()
        process.wait(30)


def _start_worker(api: ApiServer) -> subprocess.Popen[bytes]:
    os.environ["INVENTORY_IMPORT_STALL_SECONDS"] = "2"
    try:
        log = Path(api.log).with_name(f"worker-{uuid.uuid4().hex[:6]}.log")
        return start_worker(api.env, api.env["INVENTORY_REDIS_NAMESPACE"], log)
    finally:
        del os.environ["INVENTORY_IMPORT_STALL_SECONDS"]


def new_store(settings: Settings) -> str:
    store = f"imp{uuid.uuid4().hex[:8]}"
    open_store(settings, store)
    return store


def product_events(settings: Settings, prefix: str) -> int:
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE stream LIKE %s", (f"product-{prefix}%",)
        ).fetchone()
    return int(row[0]) if row else 0


def store_events(settings: Settings, store: str) -> int:
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE store = %s", (store,)).fetchone()
    return int(row[0]) if row else 0


def read_until(client: Client, path: str, check: Any = None, timeout: float = 60) -> Any:
    """GET until 200 (and `check(body)`), the read side having caught up."""
    found: dict[str, Any] = {}

    def ready() -> bool:
        response = client.get(path)
        if response.status_code == 200 and (check is None or check(response.json())):
            found.update(response.json())
            return True
        return False

    wait_until(ready, timeout)
    return found


def sample(prefix: str) -> str:
    return (
        "sku,name,unit,decimals,barcode,category,description,on_hand,unit_cost\r\n"
        f"{prefix}-A,Apple,each,0,4006381333931,fruit,Crisp,12,0.35\r\n"
        f'{prefix}-B,"Rice, 5 kg",bag,0,,grain,"two\r\nlines",7,\r\n'
        f"{prefix}-C,Flour,kg,2,,,,-3,\r\n"  # line 5: negative count
        f"{prefix}-D,Oil,l,9,,,,,\r\n"  # line 6: decimals out of range
        f"{prefix}-E,,,,,,,,\r\n"  # line 7: a new SKU without a name
        f"{prefix}-A,Apple (red),,,,,,15,\r\n"  # line 8: the same SKU again: it wins
        f"{prefix}-F,Salt,each,0,,,,1{'0' * 999},\r\n"  # line 9: 10^999
    )


BAD_LINES = [5, 6, 7, 9]
BAD_CELLS = {
    "negative": "Name,,-4",
    "decimals": "Name,7,1",
    "nan": "Name,,NaN",
    "ragged": "Name,,1,extra",
    "nul": "Na\x00me,,1",
}


def test_the_cli_lands_good_rows_lists_bad_ones_and_a_rerun_changes_nothing(
    settings: Settings,
    server_env: dict[str, str],
    admin: Client,
    worker: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    store, prefix = new_store(settings), f"CLI{uuid.uuid4().hex[:6]}"
    path = tmp_path / "catalog.csv"
    path.write_bytes(b"\xef\xbb\xbf" + sample(prefix).encode())

    first = inventory("import", str(path), "--store", store, env=server_env)

    assert first.returncode == 1, first.stderr
    for line in BAD_LINES:
        assert f"line {line}:" in first.stdout, first.stdout
    assert "7 rows, 3 landed, 4 failed" in first.stdout
    apple = read_until(admin, f"/v1/products/{prefix}-A", lambda p: p["name"] == "Apple (red)")
    assert apple["barcode"] == "4006381333931"
    level = read_until(admin, f"/v1/stores/{store}/stock/{prefix}-A", lambda s: s["on_hand"] == 15)
    assert level["on_hand"] == 15
    rice = read_until(admin, f"/v1/products/{prefix}-B")
    assert rice["name"] == "Rice, 5 kg"
    assert rice["description"] == "two\r\nlines"
    assert admin.get(f"/v1/products/{prefix}-C").status_code == 404  # never half a row
    before = (product_events(settings, prefix), store_events(settings, store))

    again = inventory("import", str(path), "--store", store, env=server_env)

    assert again.returncode == 1
    assert "appended 0 events" in again.stdout
    assert (product_events(settings, prefix), store_events(settings, store)) == before


def test_a_refused_file_is_one_clear_line(server_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "nosku.csv"
    path.write_text("name,unit\nApple,each\n")
    result = inventory("import", str(path), env=server_env)
    assert result.returncode == 1
    assert "invalid_header" in result.stdout
    assert "Traceback" not in result.stderr


def upload(
    client: Client, body: bytes | Iterator[bytes], store: str | None, **headers: str
) -> httpx.Response:
    """POST a CSV body to /v1/imports."""
    sent = {**client.headers, "Content-Type": "text/csv", **headers}
    params = {} if store is None else {"store": store}
    return httpx.post(
        f"{client.base_url}/v1/imports", content=body, params=params, headers=sent, timeout=120
    )


def finished(client: Client, job_id: str, timeout: float = 90) -> Any:
    return read_until(
        client, f"/v1/imports/{job_id}", lambda job: job["status"] in ("done", "failed"), timeout
    )


def test_an_http_import_job_reports_bad_rows_and_a_second_upload_changes_nothing(
    settings: Settings, admin: Client, worker: list[subprocess.Popen[bytes]]
) -> None:
    store, prefix = new_store(settings), f"API{uuid.uuid4().hex[:6]}"
    response = upload(admin, sample(prefix).encode(), store)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["errors_url"] == f"/v1/imports/{job['id']}/errors"

    done = finished(admin, job["id"])

    assert (done["status"], done["rows"], done["failed"]) == ("done", 7, 4)
    errors = admin.get(job["errors_url"], limit=2).json()
    assert [e["line"] for e in errors["items"]] == BAD_LINES[:2]
    rest = admin.get(job["errors_url"], cursor=errors["next_cursor"]).json()
    assert [e["line"] for e in rest["items"]] == BAD_LINES[2:]
    assert all(e["code"] == "validation_failed" for e in errors["items"] + rest["items"])
    read_until(admin, f"/v1/stores/{store}/stock/{prefix}-B", lambda s: s["on_hand"] == 7)
    before = store_events(settings, store), product_events(settings, prefix)
    second = finished(admin, upload(admin, sample(prefix).encode(), store).json()["id"])
    assert (second["rows"], second["failed"]) == (7, 4)
    assert (store_events(settings, store), product_events(settings, prefix)) == before


def declared_too_large(api: ApiServer, client: Client, store: str) -> bytes:
    """The answer's first line to a request declaring 100 MiB + 1 byte and sending none."""
    head = (
        f"POST /v1/imports?store={store} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {client.headers['Authorization']}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {100 * 1024 * 1024 + 1}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as connection:
        connection.sendall(head.encode())
        return connection.recv(4096).split(b"\r\n", 1)[0]


def test_scope_media_type_and_size(
    settings: Settings, api: ApiServer, admin: Client, worker: list[subprocess.Popen[bytes]]
) -> None:
    mine, theirs = new_store(settings), new_store(settings)
    manager = Client(api, api_key(settings, Role.MANAGER, [mine], "import manager"))
    body = b"sku,name\nMGR-1,One\n"

    assert upload(manager, body, theirs).status_code == 403
    assert upload(manager, body, None).status_code == 403
    assert upload(manager, body, mine).status_code == 202
    other = upload(admin, body, theirs).json()["id"]
    assert manager.get(f"/v1/imports/{other}").status_code == 404
    assert manager.get(f"/v1/imports/{other}/errors").json()["code"] == "import_not_found"
    wrong = upload(admin, body, mine, **{"Content-Type": "application/json"})
    assert (wrong.status_code, wrong.json()["code"]) == (415, "unsupported_media_type")
    assert declared_too_large(api, admin, mine).startswith(b"HTTP/1.1 413")
    streamed = upload(admin, (b"x" * (1 << 20) for _ in range(101)), mine)
    assert (streamed.status_code, streamed.json()["code"]) == (413, "body_too_large")


def upload_state(settings: Settings, store: str) -> tuple[str, str, int]:
    """The store's newest job: its status, error and stored chunks."""
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute(
            "SELECT j.status, coalesce(j.error, ''),"
            " (SELECT count(*) FROM import_chunks c WHERE c.job_id = j.id)"
            " FROM import_jobs j WHERE j.store = %s ORDER BY j.created_at DESC LIMIT 1",
            (store,),
        ).fetchone()
    return ("", "", 0) if row is None else (str(row[0]), str(row[1]), int(row[2]))


def test_an_upload_gone_silent_is_given_up_with_its_chunks(
    settings: Settings, admin: Client, worker: list[subprocess.Popen[bytes]]
) -> None:
    """An API process killed mid-body would leave its job receiving for ever: the sweep
    fails a job silent for ten stall periods and deletes its chunks, and a client still
    sending to it is answered 408 with nothing imported."""
    store = new_store(settings)
    events = store_events(settings, store)
    line = b"SILENT-1,One\n"
    megabyte = line * ((1 << 20) // len(line) + 1)

    def body() -> Iterator[bytes]:
        yield b"sku,name\n" + megabyte
        wait_until(lambda: upload_state(settings, store)[2] == 1, 60)
        with psycopg.connect(settings.primary_url) as conn:  # as if silent for a day
            conn.execute(
                "UPDATE import_jobs SET updated_at = now() - interval '1 day' WHERE store = %s",
                (store,),
            )
        wait_until(lambda: upload_state(settings, store)[0] == "failed", 60)
        yield megabyte

    response = upload(admin, body(), store)

    assert (response.status_code, response.json()["code"]) == (408, "body_incomplete")
    status, error, chunks = upload_state(settings, store)
    assert (status, chunks) == ("failed", 0)
    assert error.startswith("body_incomplete")
    assert store_events(settings, store) == events


def test_a_worker_killed_mid_job_is_resumed_with_nothing_doubled(
    settings: Settings, api: ApiServer, admin: Client, worker: list[subprocess.Popen[bytes]]
) -> None:
    store, prefix, rows = new_store(settings), f"K{uuid.uuid4().hex[:6]}", 20_000
    lines = ["sku,name,on_hand"] + [f"{prefix}-{n},Item {n},{n % 50}" for n in range(rows)]
    job = upload(admin, "\n".join(lines).encode(), store).json()["id"]

    read_until(admin, f"/v1/imports/{job}", lambda j: j["status"] == "running" and j["rows"] > 0)
    victim = worker.pop()
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    partial = admin.get(f"/v1/imports/{job}").json()
    worker.append(_start_worker(api))
    started = time.monotonic()
    done = finished(admin, job, timeout=180)

    resumed = time.monotonic() - started
    print(f"\nkilled at {partial['rows']} of {rows} rows; resumed in {resumed:.1f} s")  # noqa: T201
    assert (done["status"], done["rows"], done["failed"]) == ("done", rows, 0)
    assert product_events(settings, prefix) == rows
    assert store_events(settings, store) == rows + 1  # a count each, and the store's opening


# A generated row: ("good", sku number, name number, on_hand) or ("bad", kind, sku number).
GOOD = st.tuples(st.just("good"), st.integers(0, 4), st.integers(0, 2), st.integers(0, 30))
BAD = st.tuples(st.just("bad"), st.sampled_from(sorted(BAD_CELLS)), st.integers(0, 4))


def generated_csv(prefix: str, rows: list[tuple[Any, ...]]) -> bytes:
    lines = ["sku,name,decimals,on_hand"]
    for row in rows:
        if row[0] == "good":
            lines.append(f"{prefix}-{row[1]},Name {row[2]},,{row[3]}")
        else:
            lines.append(f"{prefix}-{row[2]},{BAD_CELLS[row[1]]}")
    return ("\r\n".join(lines) + "\r\n").encode()


def expected_events(rows: list[tuple[Any, ...]]) -> tuple[dict[int, int], dict[int, int]]:
    """Per SKU: product events (a registration, then one per name change) and counts (the
    first, then one per changed on_hand): each good row lands exactly once."""
    names: dict[int, int] = {}
    levels: dict[int, int] = {}
    products: dict[int, int] = {}
    counts: dict[int, int] = {}
    for kind, sku, name, on_hand in (row for row in rows if row[0] == "good"):
        assert kind == "good"
        products[sku] = products.get(sku, 0) + (names.get(sku) != name)
        counts[sku] = counts.get(sku, 0) + (levels.get(sku) != on_hand)
        names[sku], levels[sku] = name, on_hand
    return products, counts


def events_by_stream(settings: Settings, prefix: str) -> dict[str, int]:
    with psycopg.connect(settings.primary_url) as conn:
        rows = conn.execute(
            "SELECT stream, count(*) FROM events WHERE stream LIKE %s GROUP BY stream",
            (f"%-{prefix}-%",),
        ).fetchall()
    return {stream: int(count) for stream, count in rows}


async def import_bytes(settings: Settings, data: bytes, store: str) -> Report:
    scope = Scope(store, Authority(role="admin", api_key=False), datetime.now(UTC), "prop")
    actor = {"id": "test", "kind": "test", "name": "test", "role": "admin"}
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.primary_url, min_size=1, max_size=1, open=False
    )
    async with pool:
        importer = Importer(pool, row_plan, batch_rows=7)  # batches cut through duplicates
        chunks = [data[i : i + 13] for i in range(0, len(data), 13)]
        return await importer.run(chunks, sha=file_sha([data]), scope=scope, actor=actor)


@hypothesis_settings(max_examples=15, deadline=None)
@given(rows=st.lists(st.one_of(GOOD, BAD), min_size=1, max_size=30))
def test_any_file_lands_its_good_rows_exactly_once_and_names_its_bad_lines(
    settings: Settings, import_store: str, rows: list[tuple[Any, ...]]
) -> None:
    prefix = f"P{uuid.uuid4().hex[:8]}"
    data = generated_csv(prefix, rows)

    report = asyncio.run(import_bytes(settings, data, import_store))
    again = asyncio.run(import_bytes(settings, data, import_store))

    bad_lines = [line for line, row in enumerate(rows, start=2) if row[0] == "bad"]
    assert [failure.line for failure in report.failures] == bad_lines
    assert (report.rows, report.failed) == (len(rows), len(bad_lines))
    assert (again.decided, again.events) == (0, 0)
    products, counts = expected_events(rows)
    expected = {f"product-{prefix}-{sku}": n for sku, n in products.items()}
    expected |= {f"stock-{import_store}-{prefix}-{sku}": n for sku, n in counts.items()}
    assert events_by_stream(settings, prefix) == expected


@pytest.fixture(scope="module")
def import_store(settings: Settings) -> str:
    return new_store(settings)
