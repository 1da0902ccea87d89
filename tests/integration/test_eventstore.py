"""Appends on the primary: atomic, gap-free, ordered, and immutable once written."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import psycopg
import pytest

from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import UnknownEventType, WrongExpectedVersion
from inventory.eventstore.records import ANY, NO_STREAM, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.runtime.settings import Settings
from tests.events import TEST_EVENTS, Counted, Noted

store = EventStore(Codec(TEST_EVENTS))


def stream_name(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def append(settings: Settings, *writes: StreamWrite) -> list[int]:
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        async with conn.transaction():
            recorded = await store.append(conn, list(writes), {"actor": "test"})
    return [r.version for r in recorded]


async def versions_of(settings: Settings, stream: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        cursor = await conn.execute(
            "SELECT version FROM events WHERE stream = %s ORDER BY version", (stream,)
        )
        return [row[0] for row in await cursor.fetchall()]


async def test_fifty_concurrent_appends_to_one_stream_get_versions_one_to_fifty(
    settings: Settings,
) -> None:
    stream = stream_name()
    writes = [StreamWrite(stream, [NewEvent(Counted(value=i))]) for i in range(50)]

    results = await asyncio.gather(*(append(settings, write) for write in writes))

    assert sorted(v for versions in results for v in versions) == list(range(1, 51))
    assert await versions_of(settings, stream) == list(range(1, 51))


async def test_the_loser_of_an_expected_version_race_learns_the_current_version(
    settings: Settings,
) -> None:
    stream = stream_name()
    await append(settings, StreamWrite(stream, [NewEvent(Noted(text="first"))], NO_STREAM))
    racers = [
        append(settings, StreamWrite(stream, [NewEvent(Noted(text=str(i)))], expected_version=1))
        for i in range(2)
    ]

    outcomes = await asyncio.gather(*racers, return_exceptions=True)

    assert sorted(map(type, outcomes), key=str) == sorted([list, WrongExpectedVersion], key=str)
    error = next(o for o in outcomes if isinstance(o, WrongExpectedVersion))
    assert (error.stream, error.expected, error.current) == (stream, 1, 2)
    assert await versions_of(settings, stream) == [1, 2]


async def test_a_conflict_on_the_last_stream_appends_nothing_at_all(settings: Settings) -> None:
    first, second, last = (stream_name(p) for p in ("a", "b", "z"))
    await append(settings, StreamWrite(last, [NewEvent(Noted(text="exists"))]))

    with pytest.raises(WrongExpectedVersion) as raised:
        await append(
            settings,
            StreamWrite(first, [NewEvent(Noted(text="1"))], NO_STREAM),
            StreamWrite(second, [NewEvent(Noted(text="2"))], ANY),
            StreamWrite(last, [NewEvent(Noted(text="3"))], NO_STREAM),
        )

    assert raised.value.current == 1
    assert await versions_of(settings, first) == []
    assert await versions_of(settings, second) == []
    assert await versions_of(settings, last) == [1]
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM streams WHERE stream = ANY(%s)", ([first, second],)
        )
        assert await cursor.fetchone() == (0,)


async def test_two_commands_locking_the_same_streams_in_any_order_never_deadlock(
    settings: Settings,
) -> None:
    left, right = stream_name("l"), stream_name("r")

    def both(order: list[str], i: int) -> list[StreamWrite]:
        return [StreamWrite(s, [NewEvent(Counted(value=i))]) for s in order]

    runs = [
        append(settings, *both([left, right] if i % 2 else [right, left], i)) for i in range(20)
    ]
    await asyncio.gather(*runs)

    assert await versions_of(settings, left) == list(range(1, 21))
    assert await versions_of(settings, right) == list(range(1, 21))


async def test_the_stream_state_row_moves_with_the_append(settings: Settings) -> None:
    stream = stream_name()
    state = Counted(value=42)
    await append(settings, StreamWrite(stream, [NewEvent(Noted(text="x"))], state=state))

    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        async with conn.transaction():
            heads = await store.lock(conn, [stream])
    assert heads[stream].version == 1
    assert msgspec.json.decode(heads[stream].state or b"", type=Counted) == state


async def stream_row(settings: Settings, stream: str) -> tuple[int, Counted | None] | None:
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        cursor = await conn.execute(
            "SELECT version, state::text FROM streams WHERE stream = %s", (stream,)
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    return row[0], msgspec.json.decode(row[1], type=Counted) if row[1] else None


async def test_a_write_without_events_only_locks_and_leaves_no_row_it_created(
    settings: Settings,
) -> None:
    kept, locked_only = stream_name(), stream_name()
    await append(settings, StreamWrite(kept, [NewEvent(Noted(text="x"))], state=Counted(value=1)))

    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        async with conn.transaction():
            heads = await store.lock(conn, [kept, locked_only])
            assert heads[locked_only].version == 0
            await store.append(conn, [StreamWrite(kept, [NewEvent(Noted(text="y"))])], locked=heads)

    assert await stream_row(settings, locked_only) is None
    assert await stream_row(settings, kept) == (2, Counted(value=1))


async def test_a_state_without_events_replaces_the_state_and_keeps_the_version(
    settings: Settings,
) -> None:
    stream = stream_name()
    await append(settings, StreamWrite(stream, [NewEvent(Noted(text="x"))], state=Counted(value=1)))
    await append(settings, StreamWrite(stream, [], state=Counted(value=2)))
    assert await stream_row(settings, stream) == (1, Counted(value=2))


async def test_a_stream_reads_back_in_version_order_and_folds(settings: Settings) -> None:
    stream = stream_name()
    await append(settings, StreamWrite(stream, [NewEvent(Counted(value=v)) for v in (3, 4, 5)]))

    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        events = await store.read_stream(conn, stream)
        total, version = await store.fold(
            conn, stream, lambda acc, e: acc + e.value if isinstance(e, Counted) else acc, 0
        )

    assert [e.event for e in events] == [Counted(value=3), Counted(value=4), Counted(value=5)]
    assert (total, version) == (12, 3)
    assert all(e.metadata == {"actor": "test"} for e in events)


async def test_decoding_an_unknown_type_is_an_error_not_a_skip(settings: Settings) -> None:
    stream = stream_name()
    await append(settings, StreamWrite(stream, [NewEvent(Noted(text="x"))]))
    narrower = EventStore(Codec([Counted]))

    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        with pytest.raises(UnknownEventType, match=r"test\.noted"):
            await narrower.read_stream(conn, stream)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'forged' WHERE position = (SELECT max(position) FROM events)",
        "DELETE FROM events WHERE position = (SELECT max(position) FROM events)",
        "TRUNCATE events",
    ],
)
@pytest.mark.parametrize("role", ["app", "owner"])
def test_events_cannot_be_changed_or_removed_by_anyone(
    settings: Settings, statement: str, role: str
) -> None:
    url = settings.primary_url if role == "app" else settings.primary_admin_url
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        conn.rollback()
        if role == "owner":  # even with replication-role triggers switched off
            conn.execute("SET session_replication_role = replica")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
