"""The command service against the real primary: exactly once, never oversell, atomic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import (
    CancelTransfer,
    Command,
    CountLine,
    CountStock,
    DispatchTransfer,
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    ReceiveTransfer,
    RecordSale,
    RegisterProduct,
)
from inventory.domain.decider import fold
from inventory.domain.errors import InsufficientStock
from inventory.domain.events import ALL_EVENTS, Line
from inventory.domain.state import decode_state, initial_state
from inventory.eventstore.codec import Codec
from inventory.eventstore.positions import fill
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from inventory.service import (
    Actor,
    CommandService,
    Idempotency,
    IdempotencyKeyReused,
)
from tests.responders import JsonResponder

ACTOR = Actor(id="user:test", kind="user", name="test", role="admin", ip="127.0.0.1")


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def service(resources: Resources) -> CommandService:
    return CommandService(resources.primary)


async def run(service: CommandService, command: Command, key: str | None = None) -> int:
    idempotency = Idempotency.of(key, msgspec.json.encode(command)) if key else None
    outcome = await service.handle(command, ACTOR, JsonResponder(), idempotency)
    return outcome.status


async def stocked_store(
    service: CommandService, store: str, skus: dict[str, int], received_at: datetime | None = None
) -> None:
    await run(service, OpenStore(store_id=store, name=store, now=now()))
    for sku, quantity in skus.items():
        if not await exists(service, sku):
            await run(service, RegisterProduct(sku=sku, name=sku, now=now()))
        if quantity:
            receipt = (ReceiptLine(sku=sku, quantity=Decimal(quantity)),)
            await run(
                service,
                ReceiveStock(
                    store_id=store, lines=receipt, occurred_at=received_at or now(), now=now()
                ),
            )


async def exists(service: CommandService, sku: str) -> bool:
    async with service.pool.connection() as conn:
        found = await conn.execute("SELECT 1 FROM streams WHERE stream = %s", (f"product-{sku}",))
        return await found.fetchone() is not None


async def levels(resources: Resources, store: str, sku: str) -> tuple[int, Decimal, int]:
    """(version, on_hand, number of sold events) of one item, from the primary."""
    async with resources.primary.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT version, (state->>'on_hand')::numeric FROM streams WHERE stream = %s",
                (f"stock-{store}-{sku}",),
            )
        ).fetchone()
        sold = await (
            await conn.execute(
                "SELECT count(*) FROM events WHERE stream = %s AND type = 'stock.sold'",
                (f"stock-{store}-{sku}",),
            )
        ).fetchone()
    assert row is not None and sold is not None
    return row[0], row[1], sold[0]


def sale(
    store: str,
    sale_id: str,
    *pairs: tuple[str, int],
    offline: bool = False,
    occurred_at: datetime | None = None,
) -> RecordSale:
    return RecordSale(
        store_id=store,
        sale_id=sale_id,
        lines=tuple(Line(sku, Decimal(quantity)) for sku, quantity in pairs),
        offline=offline,
        occurred_at=occurred_at or now(),
        now=now(),
    )


async def test_thirty_two_concurrent_sales_of_twenty_units_sell_exactly_twenty(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    await stocked_store(service, store_id, {"HOT-1": 20})

    async def one(number: int) -> int | str:
        try:
            return await run(service, sale(store_id, f"sale-{number}", ("HOT-1", 1)))
        except InsufficientStock as error:
            return error.code

    outcomes = await asyncio.gather(*(one(n) for n in range(32)))

    assert outcomes.count(201) == 20
    assert outcomes.count("insufficient_stock") == 12
    _, on_hand, sold = await levels(resources, store_id, "HOT-1")
    assert (on_hand, sold) == (0, 20)


async def test_retries_with_one_key_racing_the_first_still_sell_once(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    await stocked_store(service, store_id, {"HOT-2": 20})
    commands = [sale(store_id, f"sale-{n}", ("HOT-2", 1)) for n in range(32)]
    keys = [f"key-{uuid.uuid4()}" for _ in commands]

    statuses = await asyncio.gather(
        *(run(service, command, key) for command, key in zip(commands * 4, keys * 4, strict=True))
    )

    assert statuses.count(201) == 20 * 4
    assert statuses.count(409) == 12 * 4
    _, on_hand, sold = await levels(resources, store_id, "HOT-2")
    assert (on_hand, sold) == (0, 20)


async def test_a_replay_answers_the_first_response_and_another_body_is_refused(
    service: CommandService, store_id: str
) -> None:
    await stocked_store(service, store_id, {"R-1": 5})
    command = sale(store_id, "s-1", ("R-1", 2))
    key = Idempotency.of("k-1", msgspec.json.encode(command))
    first = await service.handle(command, ACTOR, JsonResponder(), key)

    again = await service.handle(command, ACTOR, JsonResponder(), key)
    other = sale(store_id, "s-2", ("R-1", 1))
    with pytest.raises(IdempotencyKeyReused):
        await service.handle(
            other, ACTOR, JsonResponder(), Idempotency.of("k-1", msgspec.json.encode(other))
        )

    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)


async def test_a_replay_names_the_positions_the_events_landed_at(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    # The response is rendered before the primary has given the events positions, with
    # marks the primary fills in as it stores it in the append's round trip.
    await stocked_store(service, store_id, {"P-1": 5, "P-2": 5, "P-3": 5})
    command = sale(store_id, "s-positions", ("P-3", 1), ("P-1", 2), ("P-2", 1))
    key = Idempotency.of("k-positions", msgspec.json.encode(command))
    first = await service.handle(command, ACTOR, JsonResponder(), key)

    again = await service.handle(command, ACTOR, JsonResponder(), key)

    async with resources.primary.connection() as conn:
        landed = await (
            await conn.execute(
                "SELECT stream, version, position FROM events"
                " WHERE metadata->>'idempotency_key' = 'k-positions' ORDER BY position"
            )
        ).fetchall()
        stored = await (
            await conn.execute(
                "SELECT response, fill_positions FROM idempotency WHERE key = 'k-positions'"
            )
        ).fetchone()
    result = msgspec.json.decode(first.body)
    assert sorted((e["stream"], e["version"], e["position"]) for e in result["events"]) == sorted(
        tuple(row) for row in landed
    )
    assert len(landed) == 4  # three stock events and the sale's
    positions = [e["position"] for e in result["events"]]
    assert positions == sorted(positions)  # in position order, as before
    assert result["position"] == max(row[2] for row in landed)
    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)
    assert stored is not None and stored[1] is False
    assert bytes(stored[0]) == first.body  # stored as sent, the positions in it


async def test_a_response_stored_with_positions_0_before_0060_replays_with_them(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    # Before migrations/0060 an accepted command result was stored with positions 0 and
    # `fill_positions`; a replay still answers the bytes first sent.
    await stocked_store(service, store_id, {"P-5": 5, "P-6": 5})
    command = sale(store_id, "s-legacy", ("P-6", 1), ("P-5", 2))
    first = await service.handle(
        command, ACTOR, JsonResponder(), Idempotency.of("k-first", msgspec.json.encode(command))
    )
    sent = msgspec.json.decode(first.body)
    for event in sent["events"]:
        event["position"] = 0
    legacy = msgspec.json.encode({**sent, "position": 0})
    key = Idempotency.of("k-legacy", msgspec.json.encode(command))
    async with resources.primary.connection() as conn:
        await conn.execute(
            "INSERT INTO idempotency (principal, key, fingerprint, status, response,"
            " fill_positions) VALUES (%s, %s, %s, 201, %s, true)",
            (ACTOR.id, key.key, key.fingerprint, legacy),
        )

    again = await service.handle(command, ACTOR, JsonResponder(), key)

    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)


async def test_the_primary_fills_position_marks_as_the_service_does(
    resources: Resources,
) -> None:
    body = b'{"a":\x1e2\x1e,"b":[\x1e1\x1e,\x1e0\x1e],"c":"x\\u001ey"}'
    async with resources.primary.connection() as conn:
        filled = await (
            await conn.execute("SELECT response_with_positions(%s, %s)", (body, [17, 9]))
        ).fetchone()
        empty = await (
            await conn.execute("SELECT response_with_positions(%s, %s)", (b"", []))
        ).fetchone()

    assert filled is not None and bytes(filled[0]) == fill(body, [17, 9])
    assert fill(body, [17, 9]) == b'{"a":9,"b":[17,17],"c":"x\\u001ey"}'
    assert empty is not None and bytes(empty[0]) == b""


async def test_a_stored_refusal_replays_as_it_was_sent(
    service: CommandService, store_id: str
) -> None:
    await stocked_store(service, store_id, {"P-4": 1})
    command = sale(store_id, "s-short", ("P-4", 2))
    key = Idempotency.of("k-short", msgspec.json.encode(command))
    first = await service.handle(command, ACTOR, JsonResponder(), key)

    again = await service.handle(command, ACTOR, JsonResponder(), key)

    assert first.status == 409 and b"insufficient_stock" in first.body
    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)


async def test_a_sale_whose_third_line_is_short_appends_nothing(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    await stocked_store(service, store_id, {"A": 5, "B": 5, "C": 1})
    async with resources.primary.connection() as conn:
        before = await (await conn.execute("SELECT max(position) FROM events")).fetchone()

    with pytest.raises(InsufficientStock) as refused:
        await run(service, sale(store_id, "s-short", ("A", 1), ("B", 1), ("C", 2)))

    assert [
        (line["sku"], Decimal(str(line["available"])), Decimal(str(line["requested"])))
        for line in refused.value.errors
    ] == [("C", Decimal(1), Decimal(2))]
    async with resources.primary.connection() as conn:
        after = await (await conn.execute("SELECT max(position) FROM events")).fetchone()
        sale_rows = await (
            await conn.execute(
                "SELECT count(*) FROM streams WHERE stream = %s", (f"sale-{store_id}-s-short",)
            )
        ).fetchone()
    assert before == after
    assert sale_rows == (0,)
    for sku, quantity in (("A", 5), ("B", 5), ("C", 1)):
        assert (await levels(resources, store_id, sku))[1] == quantity


async def test_a_late_offline_sale_before_a_count_is_absorbed_and_one_after_it_stacks(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    counted_at = now() - timedelta(minutes=30)
    await stocked_store(service, store_id, {"L-1": 10}, counted_at - timedelta(hours=1))
    count = CountStock(
        store_id=store_id,
        lines=(CountLine(sku="L-1", counted=Decimal(8)),),
        occurred_at=counted_at,
        now=now(),
    )
    await run(service, count)
    assert (await levels(resources, store_id, "L-1"))[1] == 8

    before = counted_at - timedelta(minutes=10)
    await run(service, sale(store_id, "off-1", ("L-1", 3), offline=True, occurred_at=before))
    assert (await levels(resources, store_id, "L-1"))[1:] == (8, 1)

    after = counted_at + timedelta(minutes=10)
    await run(service, sale(store_id, "off-2", ("L-1", 3), offline=True, occurred_at=after))
    assert (await levels(resources, store_id, "L-1"))[1:] == (5, 2)


async def test_a_transfer_dispatched_half_received_then_cancelled_keeps_both_stores_right(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    source, destination = store_id, f"{store_id}x"
    await stocked_store(service, source, {"T-1": 10})
    await stocked_store(service, destination, {"T-1": 0})
    transfer = f"tr-{uuid.uuid4().hex[:8]}"

    async def quantities(store: str) -> dict[str, Decimal]:
        async with resources.primary.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT state FROM streams WHERE stream = %s", (f"stock-{store}-T-1",)
                )
            ).fetchone()
        state = row[0] if row else {}
        return {
            name: Decimal(str(state.get(name, 0)))
            for name in ("on_hand", "in_transit_in", "in_transit_out")
        }

    lines = (Line("T-1", Decimal(6)),)
    await run(
        service,
        DispatchTransfer(
            transfer_id=transfer,
            from_store=source,
            to_store=destination,
            lines=lines,
            occurred_at=now(),
            now=now(),
        ),
    )
    assert await quantities(source) == {"on_hand": 4, "in_transit_in": 0, "in_transit_out": 6}
    assert await quantities(destination) == {"on_hand": 0, "in_transit_in": 6, "in_transit_out": 0}

    half = (Line("T-1", Decimal(3)),)
    await run(
        service, ReceiveTransfer(transfer_id=transfer, lines=half, occurred_at=now(), now=now())
    )
    assert await quantities(source) == {"on_hand": 4, "in_transit_in": 0, "in_transit_out": 3}
    assert await quantities(destination) == {"on_hand": 3, "in_transit_in": 3, "in_transit_out": 0}

    await run(service, CancelTransfer(transfer_id=transfer, occurred_at=now(), now=now()))
    assert await quantities(source) == {"on_hand": 7, "in_transit_in": 0, "in_transit_out": 0}
    assert await quantities(destination) == {"on_hand": 3, "in_transit_in": 0, "in_transit_out": 0}


async def test_folding_each_stream_reproduces_the_state_stored_beside_it(
    service: CommandService, resources: Resources, store_id: str
) -> None:
    await stocked_store(service, store_id, {"F-1": 7, "F-2": 3})
    await run(service, sale(store_id, "f-1", ("F-1", 2), ("F-2", 1)))
    codec = Codec(ALL_EVENTS)
    async with resources.primary.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT stream, state::text FROM streams WHERE stream LIKE %s OR stream LIKE %s",
                (f"stock-{store_id}-%", f"sale-{store_id}-%"),
            )
        ).fetchall()
        assert len(rows) == 3
        for stream, state in rows:
            events = await (
                await conn.execute(
                    "SELECT type, data::text FROM events WHERE stream = %s ORDER BY version",
                    (stream,),
                )
            ).fetchall()
            folded = fold(initial_state(stream), [codec.decode(t, d) for t, d in events])
            assert folded == decode_state(stream, state)


async def test_the_pool_gets_its_connection_back_as_it_lent_it_after_any_outcome(
    settings: Settings, store_id: str
) -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.primary_url, min_size=1, max_size=1, open=False
    )
    async with pool:
        service = CommandService(pool)
        await stocked_store(service, store_id, {"P-1": 1})
        first = sale(store_id, "p-1", ("P-1", 1))
        outcomes = [
            await run(service, first, key="sold"),
            await run(service, first, key="sold"),  # a replay
            await run(service, sale(store_id, "p-2", ("P-1", 1)), key="short"),  # refused
        ]
        with pytest.raises(InsufficientStock):
            await run(service, sale(store_id, "p-3", ("P-1", 1)))  # refused, no key
        with pytest.raises(IdempotencyKeyReused):
            await run(service, sale(store_id, "p-4", ("P-1", 2)), key="sold")
        async with pool.connection() as conn:
            assert not conn.autocommit
            assert conn.info.transaction_status == TransactionStatus.IDLE
    assert outcomes == [201, 201, 409]
