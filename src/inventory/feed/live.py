"""A live message ready to send (frames built once), chains of them, the latest per store."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from inventory.feed import messages
from inventory.feed.frames import text_frame


@dataclass(frozen=True, slots=True)
class Live:
    """One event's messages, ready to send: the event, then the alerts it moved."""

    store: str
    seq: int
    prev_seq: int
    texts: tuple[str, ...]
    frames: bytes  # the texts' WebSocket frames, one after the other
    # A chain: the events it joins, in order, each one's prev_seq the seq of the one
    # before (seq and prev_seq above are the last one's and the first one's); () for one.
    parts: tuple[Live, ...] = ()

    @classmethod
    def of(cls, bundle: messages.Bundle) -> Live:
        """Decode the JSON texts and build their frames once for every connection."""
        payloads = (bytes(bundle.event), *(bytes(a) for a in bundle.alerts))
        texts = tuple(payload.decode() for payload in payloads)
        frames = b"".join(text_frame(payload) for payload in payloads)
        return cls(bundle.store, bundle.seq, bundle.prev_seq, texts, frames)

    @classmethod
    def chain(cls, lives: list[Live]) -> Live:
        """One Live for consecutive events of one store (one of them: itself)."""
        if len(lives) == 1:
            return lives[0]
        first, last = lives[0], lives[-1]
        texts = tuple(text for live in lives for text in live.texts)
        frames = b"".join(live.frames for live in lives)
        return cls(first.store, last.seq, first.prev_seq, texts, frames, tuple(lives))

    def each(self) -> tuple[Live, ...]:
        """The single events this carries, in order."""
        return self.parts or (self,)


def chains(lives: list[Live]) -> list[Live]:
    """The messages of a tick as chains, in the order of their first message: each
    store's messages join while each one follows the one before (a gap, a duplicate or a
    republished range starts a new chain)."""
    open_chains: dict[str, list[Live]] = {}
    ordered: list[list[Live]] = []
    for live in lives:
        run = open_chains.get(live.store)
        if run is not None and live.prev_seq == run[-1].seq:
            run.append(live)
            continue
        run = open_chains[live.store] = [live]
        ordered.append(run)
    return [Live.chain(run) for run in ordered]


class History:
    """The latest messages the hub handed out, per store, with no gap among them: a
    connection that fell behind catches up from here (frames built already, no replica
    read) when what it lacks is all here."""

    def __init__(self, size: int, stores: int = 10) -> None:
        self.size = size  # messages per store
        self.most = size * stores  # in all: the stores written to least lately go first
        self.held = 0
        self.stores: dict[str, deque[Live]] = {}  # the store written to last, last

    def add(self, live: Live) -> None:
        """Keep a chain's messages; a gap before one starts its store's history anew."""
        ring = self.stores.pop(live.store, None)
        if ring is None:
            ring = deque(maxlen=self.size)
        self.stores[live.store] = ring
        self.held -= len(ring)
        for one in live.each():
            if ring and one.prev_seq != ring[-1].seq:
                if one.seq <= ring[-1].seq:
                    continue  # republished: held already
                ring.clear()
            ring.append(one)
        self.held += len(ring)
        while self.held > self.most:
            self.held -= len(self.stores.pop(next(iter(self.stores))))

    def after(self, store: str, seq: int) -> list[Live] | None:
        """Every message of `store` after `seq` that the hub has handed out, or None when
        some of them are not here (older than the history, or lost)."""
        ring = self.stores.get(store)
        if not ring or ring[0].prev_seq > seq:
            return None
        if ring[-1].seq <= seq:
            return []
        return [one for one in ring if one.seq > seq]

    def latest(self, stores: frozenset[str] | None) -> dict[str, int] | None:
        """The seq of the latest message of each of `stores`, or None unless there is
        one for each (and `stores` names them)."""
        if stores is None:
            return None
        found = {store: ring[-1].seq for store in stores if (ring := self.stores.get(store))}
        return found if len(found) == len(stores) else None

    def clear(self) -> None:
        """Forget everything (the subscription broke: messages may be missing)."""
        self.stores.clear()
        self.held = 0
