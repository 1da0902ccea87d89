"""The hash chain on the real primary: computed at the append, in the store's commit order,
recomputed by the audit, and broken by a superuser's edit, deletion or reordering."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from inventory.eventstore import checkpoints
from inventory.eventstore.chain_audit import chain_stores, verify_store
from inventory.eventstore.chain_checks import check_checkpoint
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.runtime.migrations import migrate, sql_directory
from inventory.runtime.settings import Settings
from tests.events import TEST_EVENTS, Counted, Noted

store = EventStore(Codec(TEST_EVENTS))
KEY = "a checkpoint signing secret for the chain tests, 32+ chars"
# Strings jsonb escapes, characters it keeps, numbers it keeps as written.
AWKWARD = 'quote " back \\ tab \t newline \n bell \x07 del \x7f é 漢 🙂'


async def append(url: str, *writes: StreamWrite) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        async with conn.transaction():
            await store.append(conn, list(writes), {"actor": "test", "note": AWKWARD})


def event(shop: str | None, value: int, sku: str = "A", **at: Any) -> NewEvent:
    return NewEvent(Counted(value=value), store=shop, sku=sku, **at)


async def history(url: str, shop: str) -> None:
    """Six events of `shop` over two streams, and one of no store."""
    past = datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    await append(url, StreamWrite(f"s-{shop}-A", [event(shop, 1), event(shop, 2)]))
    await append(url, StreamWrite(f"s-{shop}-B", [NewEvent(Noted(text=AWKWARD), store=shop)]))
    await append(url, StreamWrite(f"s-{shop}-A", [event(shop, 3, occurred_at=past)]))
    await append(url, StreamWrite(f"s-{shop}-B", [event(shop, -4, sku="B")]))
    await append(url, StreamWrite(f"s-{shop}-A", [event(shop, 5)]))
    await append(url, StreamWrite(f"catalog-{shop}", [NewEvent(Noted(text="no store"))]))


@pytest.fixture
def primary(scratch_database: str) -> str:
    """A scratch database with the primary's schema, where a superuser may do damage."""
    migrate(scratch_database, sql_directory("migrations"))
    return scratch_database


def positions(url: str, shop: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT position FROM events WHERE store = %s ORDER BY position", (shop,)
        ).fetchall()
    return [row[0] for row in rows]


def as_superuser(url: str, *statements: tuple[str, tuple[Any, ...] | None]) -> None:
    """Run `statements` past the append-only guard, in one transaction: the trigger is
    off only inside it, as a superuser covering their tracks would do."""
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_delete")
        for statement, params in statements:
            conn.execute(statement, params)
        conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete")


def walk(url: str, shop: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        return verify_store(conn, shop)


async def test_every_chain_of_an_untouched_history_recomputes(primary: str) -> None:
    await history(primary, "s1")
    await history(primary, "s2")

    for shop, count in (("s1", 6), ("s2", 6), ("", 2)):
        found = walk(primary, shop)
        assert found.ok, found.problems
        assert found.events == count
    with psycopg.connect(primary, autocommit=True) as conn:
        assert chain_stores(conn) == ["", "s1", "s2"]


async def test_a_quantity_edited_in_place_by_a_superuser_is_named(primary: str) -> None:
    await history(primary, "s1")
    third = positions(primary, "s1")[3]

    as_superuser(
        primary,
        ("UPDATE events SET data = jsonb_set(data, '{value}', '30') WHERE position = %s", (third,)),
    )

    found = walk(primary, "s1")
    assert not found.ok
    assert found.first_break is not None
    assert found.first_break.position == third
    assert found.first_break.stream == "s-s1-A"
    assert found.first_break.version == 3
    assert f"position {third} (s-s1-A v3, test.counted" in found.problems[0]


async def test_a_deleted_event_is_named_by_the_one_after_it(primary: str) -> None:
    await history(primary, "s1")
    second, third = positions(primary, "s1")[1:3]

    as_superuser(primary, ("DELETE FROM events WHERE position = %s", (second,)))

    found = walk(primary, "s1")
    assert found.first_break is not None
    assert found.first_break.position == third


async def test_a_deleted_last_event_is_found_against_the_checkpoint(
    primary: str, tmp_path: Path
) -> None:
    await history(primary, "s1")
    last = positions(primary, "s1")[-1]
    with psycopg.connect(primary, autocommit=True) as conn:
        checkpoints.take(conn, checkpoints.signing_key(KEY), tmp_path)

    as_superuser(primary, ("DELETE FROM events WHERE position = %s", (last,)))

    assert walk(primary, "s1").ok  # every remaining link holds
    with psycopg.connect(primary, autocommit=True) as conn:
        found = check_checkpoint(conn, KEY, tmp_path, "s1")
    assert found.findings == [f"s1: the checkpointed event at position {last} is gone"]


async def test_two_events_swapped_in_order_are_named(primary: str) -> None:
    await history(primary, "s1")
    first, _, third = positions(primary, "s1")[1:4]
    columns = "id, stream, version, type, sku, data, metadata, occurred_at, recorded_at, chain"

    as_superuser(
        primary,
        (
            f"CREATE TEMP TABLE moved AS SELECT position, {columns} FROM events"
            " WHERE position IN (%s, %s)",
            (first, third),
        ),
        (
            "UPDATE events SET id = gen_random_uuid(), version = version + 1000"
            " WHERE position IN (%s, %s)",
            (first, third),
        ),
        (
            f"UPDATE events AS e SET ({columns}) = (SELECT {columns} FROM moved AS m"
            " WHERE m.position = CASE e.position WHEN %s THEN %s ELSE %s END)"
            " WHERE e.position IN (%s, %s)",
            (first, third, first, first, third),
        ),
    )

    found = walk(primary, "s1")
    assert found.first_break is not None
    assert found.first_break.position == first


async def test_a_whole_chain_rewritten_consistently_is_caught_by_the_checkpoint(
    primary: str, tmp_path: Path
) -> None:
    await history(primary, "s1")
    with psycopg.connect(primary, autocommit=True) as conn:
        checkpoints.take(conn, checkpoints.signing_key(KEY), tmp_path)
        assert check_checkpoint(conn, KEY, tmp_path, "s1").ok

    first = positions(primary, "s1")[0]
    as_superuser(
        primary,
        (
            "UPDATE events SET data = jsonb_set(data, '{value}', '100') WHERE position = %s",
            (first,),
        ),
        (REWRITE_CHAIN, None),
    )

    assert walk(primary, "s1").ok  # the links hold: only the signed head can tell
    with psycopg.connect(primary, autocommit=True) as conn:
        signed = check_checkpoint(conn, KEY, tmp_path, "s1")
        forged = check_checkpoint(conn, KEY.upper(), tmp_path, "s1")
    assert not signed.ok
    assert "the history up to it was rewritten" in signed.findings[0]
    assert "signed with another key" in forged.findings[0]


# Every link of one store recomputed in position order and its head moved along: a
# superuser's consistent rewrite.
REWRITE_CHAIN = """
DO $$
DECLARE row record; link text := repeat('0', 64);
BEGIN
    FOR row IN SELECT * FROM events WHERE store = 's1' ORDER BY position LOOP
        link := event_link(link, row.id, row.stream, row.version, row.type, row.store,
                           row.sku, row.occurred_at, row.recorded_at, row.data, row.metadata);
        UPDATE events SET chain = link WHERE position = row.position;
    END LOOP;
END $$
"""


async def test_a_checkpoint_file_edited_by_hand_is_refused(primary: str, tmp_path: Path) -> None:
    await history(primary, "s1")
    with psycopg.connect(primary, autocommit=True) as conn:
        path = checkpoints.take(conn, checkpoints.signing_key(KEY), tmp_path)
        path.write_text(path.read_text().replace('"store": "s1"', '"store": "s2"'))
        found = check_checkpoint(conn, KEY, tmp_path, None)
    assert found.findings == [f"{path.name}: the signature does not match its contents"]


async def test_the_migration_chains_the_events_recorded_before_it(
    scratch_database: str, tmp_path: Path
) -> None:
    for sql in sql_directory("migrations").glob("*.sql"):
        if sql.name < "0080":
            shutil.copy(sql, tmp_path / sql.name)
    migrate(scratch_database, tmp_path)
    await history(scratch_database, "s1")

    migrate(scratch_database, sql_directory("migrations"))
    await append(scratch_database, StreamWrite("s-s1-A", [event("s1", 6)]))

    for shop, count in (("s1", 7), ("", 1)):
        found = walk(scratch_database, shop)
        assert found.ok, found.problems
        assert found.events == count


async def test_concurrent_appends_of_one_store_chain_in_the_replicas_seq_order(
    settings: Settings,
) -> None:
    shops = [f"c{uuid.uuid4().hex[:8]}" for _ in range(2)]
    writes = [
        StreamWrite(f"s-{shop}-{n % 6}", [event(shop, n, sku=str(n % 6))])
        for n in range(60)
        for shop in shops
    ]

    gate = asyncio.Semaphore(12)

    async def one(write: StreamWrite) -> None:
        async with gate:
            await append(settings.primary_url, write)

    await asyncio.gather(*(one(write) for write in writes))

    for shop in shops:
        found = walk(settings.primary_url, shop)
        assert found.ok, found.problems
        assert found.events == 60
        replica = await replicated(settings.replica_url, shop, 60)
        assert [position for position, _ in replica] == positions(settings.primary_url, shop)
        with psycopg.connect(settings.primary_url) as conn:
            primary_chains = conn.execute(
                "SELECT position, chain FROM events WHERE store = %s ORDER BY position", (shop,)
            ).fetchall()
        assert replica == primary_chains


async def replicated(url: str, shop: str, count: int) -> list[tuple[int, str]]:
    """The replica's (position, chain) of `shop` in seq order, once all `count` arrived."""
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while True:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT position, chain FROM events WHERE store = %s ORDER BY seq", (shop,)
            ).fetchall()
        if len(rows) == count or datetime.now(UTC) > deadline:
            return [(position, chain) for position, chain in rows]
        await asyncio.sleep(0.1)
