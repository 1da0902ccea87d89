"""Group commit (command_batch, 0102): each command of a batch stands or falls alone, keys
answer once, batches never deadlock each other or the locked path."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import Command, DispatchTransfer
from inventory.domain.events import Line
from inventory.eventstore.batch import Answer, Busy, Call, command_batch
from inventory.eventstore.chain_audit import verify_store_async
from inventory.eventstore.idempotency import Remembered
from inventory.eventstore.once import Stale
from inventory.eventstore.positions import fill
from inventory.runtime.resources import Resources
from inventory.service import CommandService
from inventory.service.batcher import Batcher
from inventory.service.cache import HeadCache
from tests.integration.test_once import fast, now, on_hand, opened, sale, send


class Gated:
    """command_batch behind a gate: the first batch waits for `open`, so the commands
    that arrive meanwhile make up the second; every batch's calls and answers kept."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.sent: list[tuple[list[Call], list[Answer]]] = []
        self.second = asyncio.Event()

    async def __call__(
        self,
        conn: psycopg.AsyncConnection[Any],
        calls: Sequence[Call],
        after: Sequence[Sequence[int]],
    ) -> list[Answer]:
        await self.open.wait()
        answers = await command_batch(conn, calls, after)
        self.sent.append((list(calls), answers))
        if len(self.sent) == 2:
            self.second.set()
        return answers


def gated(pool: AsyncConnectionPool[Any], gate: Gated) -> CommandService:
    service = fast(pool)
    service.batcher = Batcher(pool, gate)  # batches of one through command_batch too
    return service


async def test_a_stale_a_busy_and_a_refused_command_leave_the_good_one_of_their_batch_written(
    resources: Resources, store_id: str
) -> None:
    pool = resources.primary
    gate = Gated()
    service, other = gated(pool, gate), fast(pool)
    good, stale, busy, refused, first = (f"{name}-{store_id}" for name in "GSBRF")
    await opened(other, store_id, {good: 5, stale: 5, busy: 5, refused: 1, first: 5})
    for sku in (good, stale, busy, refused, first):  # this "process" caches the streams
        gate.open.set()
        await send(service, sale(store_id, f"warm-{sku}", sku))
    gate.open.clear()
    gate.sent.clear()
    gate.second.clear()
    await send(other, sale(store_id, "elsewhere", stale))  # `service`'s head goes stale

    async with await psycopg.AsyncConnection.connect(resources.settings.primary_url) as holder:
        await holder.execute(
            "SELECT 1 FROM streams WHERE stream = %s FOR UPDATE", (f"stock-{store_id}-{busy}",)
        )
        blocked = asyncio.ensure_future(send(service, sale(store_id, "first", first)))
        await asyncio.sleep(0.05)  # the first batch (of one) is waiting at the gate
        racing = asyncio.gather(
            send(service, sale(store_id, "good", good), f"{store_id}-good"),
            send(service, sale(store_id, "stale", stale), f"{store_id}-stale"),
            send(service, sale(store_id, "busy", busy), f"{store_id}-busy"),
            send(service, sale(store_id, "refused", refused, 2), f"{store_id}-refused"),
        )
        await asyncio.sleep(0.05)
        gate.open.set()
        await gate.second.wait()
        await holder.rollback()  # the busy one waits for this lock on its own path
        statuses = [status for status, _ in await racing]
    assert (await blocked)[0] == 201

    calls, answers = gate.sent[1]
    assert len(calls) == 3  # the refusal was decided (refused) on cached heads: not sent
    assert isinstance(answers[0], list)
    assert isinstance(answers[1], Stale) and f"stock-{store_id}-{stale}" in answers[1].current
    assert isinstance(answers[2], Busy)
    assert statuses == [201, 201, 201, 409]
    # Only the good one of the second batch wrote there; the others on their next try.
    assert await on_hand(pool, store_id, good) == (3, Decimal(3), 3)
    assert await on_hand(pool, store_id, stale) == (4, Decimal(2), 4)
    assert await on_hand(pool, store_id, busy) == (3, Decimal(3), 3)
    assert await on_hand(pool, store_id, refused) == (2, Decimal(0), 2)
    async with pool.connection() as conn:
        assert (await verify_store_async(conn, store_id)).ok


async def captured(service: CommandService, command: Command, key: str) -> Call:
    """The call the service would send for `command` (decided on its cached heads), not sent."""
    calls: list[Call] = []

    async def capture(
        conn: psycopg.AsyncConnection[Any], batch: Sequence[Call], after: Sequence[Sequence[int]]
    ) -> list[Answer]:
        calls.extend(batch)
        raise RuntimeError("captured, not sent")

    kept, service.batcher = service.batcher, Batcher(service.pool, capture)
    try:
        with pytest.raises(RuntimeError):
            await send(service, command, key)
    finally:
        service.batcher = kept
    return calls[0]


async def test_a_stale_command_leaves_no_row_of_a_new_stream_behind(
    resources: Resources, store_id: str
) -> None:
    pool = resources.primary
    service, other = fast(pool), fast(pool)
    sku = f"N-{store_id}"
    await opened(other, store_id, {sku: 5})
    await send(service, sale(store_id, "warm", sku))
    call = await captured(service, sale(store_id, "new", sku), f"{store_id}-new")
    await send(other, sale(store_id, "elsewhere", sku))

    async with pool.connection() as conn:
        (answer,) = await command_batch(conn, [call], [()])
        row = await (
            await conn.execute(
                "SELECT count(*) FROM streams WHERE stream = %s", (f"sale-{store_id}-new",)
            )
        ).fetchone()

    assert isinstance(answer, Stale) and answer.current
    assert row == (0,)
    assert await on_hand(pool, store_id, sku) == (3, Decimal(3), 3)


async def test_one_key_twice_in_one_batch_is_written_once_and_answered_alike(
    resources: Resources, store_id: str
) -> None:
    pool = resources.primary
    service = fast(pool)
    sku = f"D-{store_id}"
    await opened(service, store_id, {sku: 5})
    await send(service, sale(store_id, "warm", sku))
    call = await captured(service, sale(store_id, "twice", sku), f"{store_id}-twice")

    async with pool.connection() as conn:
        answers = await command_batch(conn, [call, call], [(), ()])

    assert isinstance(answers[0], list) and isinstance(answers[1], Remembered)
    assert call.response is not None and answers[1].status == call.response.status
    positions = [recorded.position for recorded in answers[0]]
    assert answers[1].body == fill(call.response.body, positions)
    assert await on_hand(pool, store_id, sku) == (3, Decimal(3), 3)


async def test_one_key_in_two_processes_batches_sells_once_and_answers_one_body(
    resources: Resources, store_id: str
) -> None:
    first, second = fast(resources.primary), fast(resources.primary)
    skus = [f"K{n}-{store_id}" for n in range(12)]
    await opened(first, store_id, dict.fromkeys(skus, 10))
    for sku in skus:  # both caches warm: their batches race on the same streams
        await send(second, sale(store_id, f"warm-{sku}", sku))

    commands = [sale(store_id, f"s{n}", sku) for n, sku in enumerate(skus * 2)]
    racing = [
        send(service, command, f"{store_id}-{n}")
        for n, command in enumerate(commands)
        for service in (first, second, second, first)
    ]
    results = await asyncio.gather(*racing)

    for n in range(len(skus) * 2):
        assert len(set(results[4 * n : 4 * n + 4])) == 1
        assert results[4 * n][0] == 201
    for sku in skus:
        assert await on_hand(first.pool, store_id, sku) == (4, Decimal(7), 4)
    assert first.batcher is not None and second.batcher is not None
    batched = first.batcher.commands + second.batcher.commands
    print(f"mean batch {batched / (first.batcher.batches + second.batcher.batches):.1f}")  # noqa: T201


async def _deadlocks(pool: AsyncConnectionPool[Any]) -> int:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_batches_of_two_processes_and_the_locked_path_never_deadlock_or_oversell(
    resources: Resources, store_id: str
) -> None:
    pool = resources.primary
    batching = [fast(pool), fast(pool)]
    locked = CommandService(pool, heads=None)
    skus = [f"X{n}-{store_id}" for n in range(6)]
    await opened(locked, store_id, dict.fromkeys(skus, 40))
    rng = random.Random(7)
    commands = [sale(store_id, f"s{n}", rng.choice(skus), rng.randint(1, 2)) for n in range(240)]
    before = await _deadlocks(pool)

    results = await asyncio.gather(
        *(
            send(rng.choice([*batching, locked]), command, f"{store_id}-{n}")
            for n, command in enumerate(commands)
        )
    )

    assert await _deadlocks(pool) == before
    sold = dict.fromkeys(skus, 0)
    for (status, _), command in zip(results, commands, strict=True):
        assert status in (201, 409)
        if status == 201:
            sold[command.lines[0].sku] += int(command.lines[0].quantity)
    for sku in skus:
        _, left, _ = await on_hand(pool, store_id, sku)
        assert left == 40 - sold[sku] >= 0
    async with pool.connection() as conn:
        assert (await verify_store_async(conn, store_id)).ok
    sizes = [
        service.batcher.commands / max(1, service.batcher.batches)
        for service in batching
        if service.batcher
    ]
    print(f"batched and locked racing: mean batch {sizes}")  # noqa: T201


async def _stock_of(pool: AsyncConnectionPool[Any], stream: str) -> tuple[Decimal, Decimal]:
    """(on hand, in transit out) of one stock stream, on the primary."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT (state->>'on_hand')::numeric,"
                " coalesce((state->>'in_transit_out')::numeric, 0)"
                " FROM streams WHERE stream = %s",
                (stream,),
            )
        ).fetchone()
    assert row is not None
    return row[0], row[1]


async def test_batches_of_several_stores_transfers_and_the_locked_path_never_deadlock(
    resources: Resources, store_id: str
) -> None:
    """A process's batch holds every store's commands that arrive together; transfers
    (two stores' chains) go in batches and down the locked path, which takes its chain
    locks in sorted order. A batch that took its chain locks as its calls came (holding
    C, waiting for B, beside a transfer holding B and waiting for C) would deadlock."""
    pool = resources.primary
    batching = [fast(pool), fast(pool)]
    locked = CommandService(pool, heads=None)
    stores = [f"{store_id}{letter}" for letter in "cba"]  # arrival order against sorted
    skus = [f"Y{n}-{store_id}" for n in range(3)]
    for store in stores:
        await opened(locked, store, dict.fromkeys(skus, 60))
    rng = random.Random(11)
    commands: list[Command] = []
    taken: list[tuple[str, str, int]] = []  # each command's store, SKU and quantity out
    for n in range(300):
        source, destination = rng.sample(stores, 2)
        sku, quantity = rng.choice(skus), rng.randint(1, 2)
        taken.append((source, sku, quantity))
        if n % 3:
            commands.append(sale(source, f"s{n}", sku, quantity))
            continue
        line = (Line(sku, Decimal(quantity)),)
        commands.append(
            DispatchTransfer(
                transfer_id=f"t{n}-{store_id}",
                from_store=source,
                to_store=destination,
                lines=line,
                occurred_at=now(),
                now=now(),
            )
        )
    before = await _deadlocks(pool)

    results = await asyncio.gather(
        *(
            send(rng.choice([*batching, *batching, locked]), command, f"{store_id}-{n}")
            for n, command in enumerate(commands)
        )
    )

    assert await _deadlocks(pool) == before
    assert {status for status, _ in results} <= {201, 409}
    gone = {(store, sku): Decimal(0) for store in stores for sku in skus}
    for (status, _), (source, sku, quantity) in zip(results, taken, strict=True):
        if status == 201:
            gone[(source, sku)] += quantity
    for (store, sku), left in gone.items():
        on_hand, _ = await _stock_of(pool, f"stock-{store}-{sku}")
        assert on_hand == 60 - left >= 0
    async with pool.connection() as conn:
        for store in stores:
            assert (await verify_store_async(conn, store)).ok
    assert all(s.batcher and s.batcher.commands > s.batcher.batches for s in batching)


async def _waiting_for_a_chain(pool: AsyncConnectionPool[Any]) -> None:
    """Until some transaction waits for a store's chain lock (0081's lock space, 7806)."""
    async with pool.connection() as conn:
        for _ in range(500):
            cur = await conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = 7806 AND objsubid = 2 AND NOT granted"
            )
            row = await cur.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no transaction ever waited for a chain lock")


async def test_a_batch_of_two_stores_waits_for_its_chains_holding_none(
    resources: Resources, store_id: str
) -> None:
    """A batch [sale at c, sale at b] beside a transaction that holds b's chain lock and
    then asks for c's, as a transfer from b to c on the locked path does: the batch
    takes b's then c's before anything else, so the transaction gets c's at once. A batch
    that took c's for its first call and then waited for b's would deadlock with it."""
    pool = resources.primary
    gate = Gated()
    gate.open.set()
    service = gated(pool, gate)
    b_store, c_store, sku = f"{store_id}b", f"{store_id}c", f"W-{store_id}"
    for store in (b_store, c_store):
        await opened(service, store, {sku: 5})
        await send(service, sale(store, f"warm-{store}", sku))  # the heads, cached
    gate.open.clear()
    gate.sent.clear()
    async with pool.connection() as conn, conn.transaction():
        chain = "SELECT pg_advisory_xact_lock(7806, hashtext(%s))"
        await conn.execute(chain, (b_store,))
        (first,) = selling(service, c_store, sku, ["first"])  # the first batch, at the gate
        await asyncio.sleep(0.05)
        second = selling(service, c_store, sku, ["c"])
        await asyncio.sleep(0.05)
        second += selling(service, b_store, sku, ["b"])  # after it, in the second batch
        await asyncio.sleep(0.05)
        gate.open.set()
        await _waiting_for_a_chain(pool)  # the second batch, for b's chain
        # Were c's held, a transfer taking it here would wait: a deadlock.
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(7806, hashtext(%s))", (c_store,))
        assert await cur.fetchone() == (True,)
    statuses = [(await done)[0] for done in (first, *second)]

    assert statuses == [201, 201, 201]
    assert [len(calls) for calls, _ in gate.sent] == [1, 2]
    async with pool.connection() as conn:
        for store in (b_store, c_store):
            assert (await verify_store_async(conn, store)).ok


@pytest.mark.parametrize("seed", [4, 5])
async def test_batched_commands_and_the_locked_path_agree_on_random_commands(
    resources: Resources, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # test_once's property, every command through command_batch (batches of one included)
    from tests.integration import test_once

    def batched(pool: AsyncConnectionPool[Any]) -> CommandService:
        service = CommandService(pool, heads=HeadCache())
        service.batcher = Batcher(pool, command_batch)
        return service

    monkeypatch.setattr(test_once, "fast", batched)
    await test_once.test_the_one_trip_path_and_the_locked_path_agree_on_random_commands(
        resources, seed
    )


async def warmed_behind_a_gate(
    pool: AsyncConnectionPool[Any], store_id: str, sku: str, stock: int
) -> tuple[CommandService, Gated]:
    """A gated service that sold one of `stock` units of `sku` (so its head is cached),
    its gate then closed: its next batch waits for `open`."""
    gate = Gated()
    gate.open.set()
    service = gated(pool, gate)
    await opened(service, store_id, {sku: stock})
    await send(service, sale(store_id, "warm", sku))
    gate.open.clear()
    gate.sent.clear()
    gate.second.clear()
    return service, gate


def selling(
    service: CommandService, store_id: str, sku: str, names: list[str], quantity: int = 1
) -> list[asyncio.Future[tuple[int, bytes]]]:
    """Sales of `sku` under way, one per name (its sale id and key), in that order."""
    return [
        asyncio.ensure_future(
            send(service, sale(store_id, name, sku, quantity), f"{store_id}-{name}")
        )
        for name in names
    ]


async def test_sales_of_one_stream_queued_behind_a_batch_share_the_next_one(
    resources: Resources, store_id: str
) -> None:
    pool = resources.primary
    sku = f"H-{store_id}"
    service, gate = await warmed_behind_a_gate(pool, store_id, sku, 7)

    (first,) = selling(service, store_id, sku, ["first"])
    await asyncio.sleep(0.05)  # at the gate
    queued = selling(service, store_id, sku, [f"q{n}" for n in range(5)])
    await asyncio.sleep(0.05)
    gate.open.set()
    statuses = [(await done)[0] for done in (first, *queued)]

    # Each decided on the heads the one before it leaves: one batch, every one written.
    calls, answers = gate.sent[1]
    assert len(calls) == 5 and all(isinstance(answer, list) for answer in answers)
    assert statuses == [201] * 6
    assert await on_hand(pool, store_id, sku) == (8, Decimal(0), 8)


async def test_sales_queued_behind_a_stale_one_are_decided_again_and_never_oversell(
    resources: Resources, store_id: str
) -> None:
    pool = resources.primary
    sku = f"V-{store_id}"
    service, gate = await warmed_behind_a_gate(pool, store_id, sku, 6)  # cached: 5 left

    (first,) = selling(service, store_id, sku, ["first"])
    await asyncio.sleep(0.05)  # decided on 5 left, at the gate
    await send(fast(pool), sale(store_id, "elsewhere", sku, 2))  # 3 left: `first` is stale
    queued = selling(service, store_id, sku, [f"q{n}" for n in range(5)])
    await asyncio.sleep(0.05)
    gate.open.set()
    statuses = [(await done)[0] for done in (first, *queued)]

    assert sorted(statuses) == [201] * 3 + [409] * 3
    assert await on_hand(pool, store_id, sku) == (6, Decimal(0), 6)
    async with pool.connection() as conn:
        assert (await verify_store_async(conn, store_id)).ok


async def test_a_command_that_needs_its_own_connection_waits_for_the_sales_queued_before_it(
    resources: Resources, store_id: str
) -> None:
    # Commands of one process on one stream are decided in arrival order: one that
    # cannot be decided on the heads queued before it (here a sale of more than they
    # leave) takes the locked path only once those are written, and the sales after it
    # wait for it. Were it to run at once, it would see the stock before the queued sale
    # and sell what that sale was promised.
    pool = resources.primary
    sku = f"O-{store_id}"
    service, gate = await warmed_behind_a_gate(pool, store_id, sku, 7)  # cached: 6 left

    (first,) = selling(service, store_id, sku, ["first"])
    await asyncio.sleep(0.05)  # decided on 6 left, queued at the gate: 5 left after it
    (large,) = selling(service, store_id, sku, ["large"], 6)
    await asyncio.sleep(0.05)
    after = selling(service, store_id, sku, [f"a{n}" for n in range(3)])
    await asyncio.sleep(0.05)
    gate.open.set()
    statuses = [(await done)[0] for done in (first, large, *after)]

    assert statuses == [201, 409, 201, 201, 201]
    assert not any(isinstance(answer, Busy) for _, answers in gate.sent for answer in answers)
    assert await on_hand(pool, store_id, sku) == (6, Decimal(2), 6)  # 7 received, 5 sold
    async with pool.connection() as conn:
        assert (await verify_store_async(conn, store_id)).ok
