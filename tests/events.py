"""Event types for tests of the event store and projector engine (the domain's come later)."""

from __future__ import annotations

import msgspec


class Noted(msgspec.Struct, frozen=True, tag="test.noted"):
    """Something worth writing down happened."""

    text: str


class Counted(msgspec.Struct, frozen=True, tag="test.counted"):
    """A number was recorded."""

    value: int


TEST_EVENTS = (Noted, Counted)
