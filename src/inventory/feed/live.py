"""A live message ready to send (its frames built once), and chains of them."""

from __future__ import annotations

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
