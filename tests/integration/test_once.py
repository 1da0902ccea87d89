"""One-trip commands on cached heads: stale caches, racing keys, the locked path's answers."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import (
    AdjustmentLine,
    AdjustStock,
    Command,
    CountLine,
    CountStock,
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    RecordReturn,
    RecordSale,
    RegisterProduct,
    ReleaseReservation,
    ReserveStock,
    SetReorderPoint,
)
from inventory.domain.errors import CommandRejected
from inventory.domain.events import Line
from inventory.runtime.resources import Resources
from inventory.service import Actor, CommandService, Idempotency
from inventory.service.cache import HeadCache
from tests.responders import JsonResponder

ACTOR = Actor(id="user:once", kind="user", name="once", role="admin", ip="127.0.0.1")


def now() -> datetime:
    return datetime.now(UTC)


def fast(pool: AsyncConnectionPool[Any]) -> CommandService:
    """A service as one API process runs it: its own cache of heads."""
    return CommandService(pool, heads=HeadCache())


async def send(
    service: CommandService, command: Command, key: str | None = None
) -> tuple[int, bytes]:
    """Status and body, a refusal without a key as (409, its code)."""
    idempotency = Idempotency.of(key, msgspec.json.encode(command)) if key else None
    try:
        outcome = await service.handle(command, ACTOR, JsonResponder(), idempotency)
    except CommandRejected as error:
        return 409, error.code.encode()
    return outcome.status, outcome.body


async def opened(service: CommandService, store: str, skus: dict[str, int]) -> None:
    await send(service, OpenStore(store_id=store, name=store, now=now()))
    for sku, quantity in skus.items():
        await send(service, RegisterProduct(sku=sku, name=sku, now=now()))
        receipt = (ReceiptLine(sku=sku, quantity=Decimal(quantity)),)
        await send(
            service, ReceiveStock(store_id=store, lines=receipt, occurred_at=now(), now=now())
        )


def sale(store: str, sale_id: str, sku: str, quantity: int = 1) -> RecordSale:
    line = (Line(sku, Decimal(quantity)),)
    return RecordSale(store_id=store, sale_id=sale_id, lines=line, occurred_at=now(), now=now())


async def on_hand(pool: AsyncConnectionPool[Any], store: str, sku: str) -> tuple[int, Decimal, int]:
    """(version, on hand, events) of one stock stream, on the primary."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT s.version, (s.state->>'on_hand')::numeric,"
                " (SELECT count(*) FROM events AS e WHERE e.stream = s.stream)"
                " FROM streams AS s WHERE s.stream = %s",
                (f"stock-{store}-{sku}",),
            )
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def test_a_warm_cache_sells_in_one_round_trip_and_the_locked_path_agrees(
    resources: Resources, store_id: str
) -> None:
    service = fast(resources.primary)
    sku = f"O-{store_id}"
    await opened(service, store_id, {sku: 10})
    hits = service.heads.hits if service.heads else 0

    statuses = [
        (await send(service, sale(store_id, f"s{n}", sku), f"{store_id}-k{n}"))[0] for n in range(5)
    ]

    assert statuses == [201] * 5
    assert service.heads is not None and service.heads.hits - hits == 5
    assert await on_hand(resources.primary, store_id, sku) == (6, Decimal(5), 6)


async def test_a_stale_cache_in_another_process_falls_back_and_never_oversells(
    resources: Resources, store_id: str
) -> None:
    first, second = fast(resources.primary), fast(resources.primary)
    sku = f"S-{store_id}"
    await opened(first, store_id, {sku: 12})
    await send(second, sale(store_id, "warm", sku))  # second caches the stream too
    assert second.heads is not None and first.heads is not None

    # Each sells on a cache the other keeps making stale.
    commands = [(first if n % 2 else second, sale(store_id, f"s{n}", sku, 2)) for n in range(12)]
    results = await asyncio.gather(
        *(send(service, c, f"{store_id}-k{n}") for n, (service, c) in enumerate(commands))
    )

    statuses = [status for status, _ in results]
    assert statuses.count(201) == 5 and statuses.count(409) == 7, statuses
    assert await on_hand(resources.primary, store_id, sku) == (7, Decimal(1), 7)
    hits, stale = first.heads.hits + second.heads.hits, first.heads.misses + second.heads.misses
    print(f"two caches racing: {hits} one trip, {stale} stale")  # noqa: T201


async def test_a_refusal_on_a_stale_cache_is_decided_again_under_the_locks(
    resources: Resources, store_id: str
) -> None:
    mine, other = fast(resources.primary), fast(resources.primary)
    sku = f"R-{store_id}"
    await opened(mine, store_id, {sku: 1})
    assert (await send(mine, sale(store_id, "first", sku), f"{store_id}-first"))[0] == 201
    receipt = (ReceiptLine(sku=sku, quantity=Decimal(3)),)
    await send(other, ReceiveStock(store_id=store_id, lines=receipt, occurred_at=now(), now=now()))

    # `mine` still caches 0 on hand: its cached decision is a refusal, not to be trusted.
    status, _ = await send(mine, sale(store_id, "second", sku, 2), f"{store_id}-second")

    assert status == 201
    assert await on_hand(mine.pool, store_id, sku) == (4, Decimal(1), 4)


async def test_one_key_racing_in_two_processes_sells_once_and_answers_one_body(
    resources: Resources, store_id: str
) -> None:
    first, second = fast(resources.primary), fast(resources.primary)
    sku = f"K-{store_id}"
    await opened(first, store_id, {sku: 50})
    await send(second, sale(store_id, "warm", sku))
    commands = [sale(store_id, f"s{n}", sku) for n in range(8)]

    racing = [
        send(service, command, f"{store_id}-{n}")
        for n, command in enumerate(commands)
        for service in (first, second, first, second)
    ]
    results = await asyncio.gather(*racing)

    for n in range(8):
        assert len(set(results[4 * n : 4 * n + 4])) == 1
        assert results[4 * n][0] == 201
    assert await on_hand(first.pool, store_id, sku) == (10, Decimal(41), 10)


# The property: a sequence of commands gives the same events, states and responses on the
# one-trip path (with another "process" making its cache stale now and then) as on the
# locked path alone, both stores fed the same commands.

SKUS = ("A", "B", "C")


def _command(rng: random.Random, store: str, n: int, sold: list[str]) -> Command:
    at, sku = now(), rng.choice(SKUS)
    one = Decimal(rng.randint(1, 3))
    reservation = f"r{rng.randrange(3)}"
    common: dict[str, Any] = {"store_id": store, "occurred_at": at, "now": at}
    makers: list[Any] = [
        lambda: ReceiveStock(**common, lines=(ReceiptLine(sku=sku, quantity=one),)),
        lambda: AdjustStock(
            **common,
            lines=(
                AdjustmentLine(
                    sku=sku, delta=Decimal(rng.randint(-3, 3) or 1), reason="correction"
                ),
            ),
        ),
        lambda: CountStock(
            **common,
            lines=(
                CountLine(
                    sku=sku,
                    counted=Decimal(rng.randint(0, 6)),
                    expected_version=rng.choice([None, rng.randint(0, 6)]),
                ),
            ),
        ),
        lambda: SetReorderPoint(**common, sku=sku, minimum=one),
        lambda: ReserveStock(**common, reservation_id=reservation, lines=(Line(sku, one),)),
        lambda: ReleaseReservation(**common, reservation_id=reservation),
    ]
    if sold:
        makers.append(
            lambda: RecordReturn(**common, sale_id=rng.choice(sold), lines=(Line(sku, one),))
        )
    if rng.random() < 0.4:
        sale_id = f"s{rng.randrange(n + 1)}"
        sold.append(sale_id)
        lines = tuple(Line(s, Decimal(rng.randint(1, 3))) for s in rng.sample(SKUS, 2))
        back = at - timedelta(hours=1) if rng.random() < 0.1 else at
        return RecordSale(store_id=store, sale_id=sale_id, lines=lines, occurred_at=back, now=at)
    made: Command = rng.choice(makers)()
    return made


def _for(command: Command, store: str) -> Command:
    """The same command in another store."""
    return msgspec.structs.replace(command, store_id=store)  # type: ignore[type-var]


def _normal(body: bytes, store: str) -> Any:
    """A response without what differs between two stores' runs: ids, positions, the store."""
    text = body.decode().replace(store, "STORE")
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text
    return _without(value, {"command_id", "position"})


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


async def _history(pool: AsyncConnectionPool[Any], store: str) -> list[Any]:
    """Every stream of the store: its version, state and events, the store named STORE."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT s.stream, s.version, s.state::text, (SELECT json_agg(json_build_array("
                "e.version, e.type, e.sku, e.data, e.occurred_at) ORDER BY e.version)::text"
                " FROM events AS e WHERE e.stream = s.stream)"
                " FROM streams AS s WHERE s.stream LIKE %s ORDER BY s.stream",
                (f"%-{store}%",),
            )
        ).fetchall()
    return [[str(cell).replace(store, "STORE") for cell in row] for row in rows]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_one_trip_path_and_the_locked_path_agree_on_random_commands(
    resources: Resources, seed: int
) -> None:
    rng = random.Random(seed)
    suffix = uuid.uuid4().hex[:8]
    quick, other = fast(resources.primary), fast(resources.primary)
    locked = CommandService(resources.primary, heads=None)
    stores = (f"q{suffix}", f"l{suffix}")
    for sku in SKUS:
        await send(locked, RegisterProduct(sku=sku, name=sku, now=now()))
    opened_at = now()
    for store in stores:
        await send(locked, OpenStore(store_id=store, name=store, now=opened_at))
    sold: list[str] = []
    sent: list[tuple[Command, str | None]] = []
    for n in range(40):
        if sent and rng.random() < 0.15:
            command, key = rng.choice(sent)  # a retry
        else:
            command = _command(rng, "X", n, sold)
            key = rng.choice([None, f"k{n}"])
            sent.append((command, key))
        # Now and then another process runs it on the one-trip store: a stale cache.
        runner = other if rng.random() < 0.2 else quick
        answers = [
            await send(runner, _for(command, stores[0]), key and f"{stores[0]}{key}"),
            await send(locked, _for(command, stores[1]), key and f"{stores[1]}{key}"),
        ]
        assert answers[0][0] == answers[1][0], (n, command, answers)
        assert _normal(answers[0][1], stores[0]) == _normal(answers[1][1], stores[1]), (n, command)

    assert await _history(resources.primary, stores[0]) == await _history(
        resources.primary, stores[1]
    )
    assert quick.heads is not None and quick.heads.hits > 0
    print(f"seed {seed}: one trip {quick.heads.hits}, stale {quick.heads.misses}")  # noqa: T201
