"""The head cache: newest head wins, bounded, and turns first come, first served."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from inventory.domain.context import Head
from inventory.domain.state import StockState, initial_state
from inventory.service.cache import HeadCache


def stock(version: int, on_hand: int) -> Head:
    return Head(version, StockState(on_hand=Decimal(on_hand)))


def test_an_unknown_stream_is_assumed_new() -> None:
    assert HeadCache().get("stock-s1-A") == Head(0, initial_state("stock-s1-A"))


def test_an_older_head_never_replaces_a_newer_one() -> None:
    cache = HeadCache()
    cache.keep({"stock-s1-A": stock(5, 3)})
    cache.keep({"stock-s1-A": stock(4, 9)})
    assert cache.get("stock-s1-A") == stock(5, 3)
    cache.forget(["stock-s1-A"])
    assert cache.get("stock-s1-A").version == 0


def test_the_least_recently_used_stream_goes_first() -> None:
    cache = HeadCache(capacity=2)
    cache.keep({"stock-s1-A": stock(1, 1), "stock-s1-B": stock(1, 1)})
    cache.get("stock-s1-A")
    cache.keep({"stock-s1-C": stock(1, 1)})
    assert [cache.get(s).version for s in ("stock-s1-A", "stock-s1-B", "stock-s1-C")] == [1, 0, 1]


def test_sales_own_streams_never_push_out_the_stock_streams_they_sell_from() -> None:
    # 60 stock streams sold in turn, each sale with its own new stream: between two sales
    # of one stock stream come 60 new sale streams and 59 other stock streams, more than
    # the 100 kept. Were a sale's stream young, every stock stream would be gone by then.
    cache = HeadCache(capacity=100)
    for n in range(1_000):
        cache.keep({f"sale-s1-{n}": Head(1, None), f"stock-s1-{n % 60}": stock(n + 1, 5)})
    assert all(cache.get(f"stock-s1-{k}").version > 0 for k in range(60))
    assert cache.get("sale-s1-999").version == 0  # no room left for it: assumed new


async def test_commands_on_one_stream_take_turns_in_arrival_order() -> None:
    cache, order = HeadCache(), []

    async def command(name: str, streams: list[str]) -> None:
        async with cache.turn(streams):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(
        command("first", ["a", "b"]), command("second", ["b"]), command("other", ["c"])
    )

    assert order.index("first out") < order.index("second in")
    assert order.index("other in") < order.index("first out")  # another stream: no wait


async def test_a_command_cancelled_while_waiting_keeps_its_successors_waiting() -> None:
    cache, order = HeadCache(), []
    holding = asyncio.Event()

    async def first() -> None:
        async with cache.turn(["a"]):
            holding.set()
            await asyncio.sleep(0.05)
            order.append("first out")

    async def later(name: str) -> None:
        async with cache.turn(["a"]):
            order.append(f"{name} in")

    running = asyncio.create_task(first())
    await holding.wait()
    cancelled = asyncio.create_task(later("cancelled"))
    await asyncio.sleep(0)
    last = asyncio.create_task(later("last"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(running, last, return_exceptions=True)

    assert order == ["first out", "last in"]


async def test_a_queued_command_s_heads_are_its_successors_until_answered() -> None:
    cache = HeadCache()
    cache.keep({"stock-s1-A": stock(1, 5)})
    answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    cache.queue({"stock-s1-A": stock(2, 4)}, answer)

    assert cache.queued("stock-s1-A") == (stock(2, 4), answer)
    assert cache.queued("stock-s1-B") is None
    answer.set_result([])  # written: its events' places
    # Before the done callback runs, the written head is already the one to decide on.
    assert cache.queued("stock-s1-A") == (stock(2, 4), None)
    await asyncio.sleep(0)
    assert cache.queued("stock-s1-A") is None
    assert cache.get("stock-s1-A") == stock(2, 4)


async def test_a_queued_command_not_written_leaves_the_cached_head() -> None:
    cache = HeadCache()
    cache.keep({"stock-s1-A": stock(1, 5)})
    answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    cache.queue({"stock-s1-A": stock(2, 4)}, answer)

    answer.set_result(object())  # stale or busy: nothing written
    assert cache.queued("stock-s1-A") is None
    await asyncio.sleep(0)
    assert cache.get("stock-s1-A") == stock(1, 5)


async def test_settled_waits_for_the_last_command_queued_on_the_streams() -> None:
    cache = HeadCache()
    first: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    second: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    cache.queue({"a": stock(1, 1)}, first)
    cache.queue({"a": stock(2, 1), "b": stock(1, 1)}, second)
    waiting = asyncio.ensure_future(cache.settled(["a", "c"]))

    first.set_result([])
    await asyncio.sleep(0)
    assert not waiting.done()
    second.set_result([])
    await asyncio.wait_for(waiting, 1)
    await cache.settled(["a", "b", "c"])  # nothing queued: at once


async def test_a_command_that_hands_its_turn_on_lets_its_successor_in() -> None:
    cache, order = HeadCache(), []
    queued = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with cache.turn(["a"]) as turn:
            order.append("first in")
            turn.hand_on()
            queued.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        await queued.wait()
        async with cache.turn(["a"]) as turn:
            order.append("second in")
            assert not turn.handed
        release.set()

    await asyncio.gather(first(), second())
    assert order == ["first in", "second in", "first out"]
