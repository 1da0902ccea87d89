"""The hub's chains: consecutive events of a store joined, each connection given exactly
the events it lacks, in order, whether through its direct path or its queue."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from inventory.feed.frames import text_frame
from inventory.feed.hub import Subscriber
from inventory.feed.live import Live, chains
from inventory.feed.session import FeedSession


def _live(store: str, seq: int, prev_seq: int) -> Live:
    text = f'{{"kind":"event","store":"{store}","seq":{seq}}}'
    return Live(store, seq, prev_seq, (text,), text_frame(text.encode()))


class _Writer:
    """A transport that is always writable and keeps what it is given."""

    def __init__(self) -> None:
        self.written = b""

    def writable(self) -> bool:
        return True

    def write(self, frames: bytes) -> None:
        self.written += frames


def _session(after: int, sent: list[str]) -> FeedSession:
    async def send(text: str) -> None:
        sent.append(text)

    return FeedSession(cast("Any", None), frozenset({"a"}), after, send, _Writer())


def test_consecutive_events_of_a_store_join_and_a_gap_or_a_repeat_starts_anew() -> None:
    a1, a2, a3 = _live("a", 10, 4), _live("a", 12, 10), _live("a", 15, 12)
    b1, b2 = _live("b", 11, 0), _live("b", 14, 11)
    gap, repeat = _live("a", 20, 17), _live("a", 15, 12)

    joined = chains([a1, b1, a2, b2, a3, gap, repeat])

    assert [(c.store, c.prev_seq, c.seq) for c in joined] == [
        ("a", 4, 15),
        ("b", 0, 14),
        ("a", 17, 20),
        ("a", 12, 15),
    ]
    assert joined[0].each() == (a1, a2, a3)
    assert joined[0].frames == a1.frames + a2.frames + a3.frames
    assert joined[2].each() == (gap,)


def test_a_chain_gives_a_connection_in_step_only_the_events_it_has_not_sent() -> None:
    lives = [_live("a", 10, 4), _live("a", 12, 10), _live("a", 15, 12)]
    [chain] = chains(lives)

    fresh, partly, done, behind = (_session(after, []) for after in (4, 10, 15, 2))

    assert fresh.direct(chain) == chain.frames
    assert partly.direct(chain) == lives[1].frames + lives[2].frames
    assert done.direct(chain) == b""
    assert behind.direct(chain) is None  # a message is missing before it: the queue
    assert [s.last_sent["a"] for s in (fresh, partly, done, behind)] == [15, 15, 15, 2]


def test_a_chain_that_cannot_go_directly_is_queued_message_by_message() -> None:
    async def run() -> list[Any]:
        subscriber = Subscriber(frozenset({"a"}), asyncio.Queue(2))
        subscriber.direct = lambda live: None  # not writable now
        [chain] = chains([_live("a", 10, 4), _live("a", 12, 10), _live("a", 15, 12)])
        assert subscriber.offer(chain) is False
        assert subscriber.overflowed.is_set()  # three messages, room for two
        return [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]

    assert [live.seq for live in asyncio.run(run())] == [10, 12]


def test_the_queue_path_delivers_a_chain_partly_sent_from_where_it_stopped() -> None:
    sent: list[str] = []
    session = _session(10, sent)
    lives = [_live("a", 10, 4), _live("a", 12, 10), _live("a", 15, 12)]

    asyncio.run(session.deliver(chains(lives)[0]))

    assert sent == [lives[1].texts[0], lives[2].texts[0]]
    assert session.last_sent["a"] == 15
