"""The event store's errors: what a caller may need to tell apart."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of the event store's errors."""


class WrongExpectedVersion(EventStoreError):
    """A stream was not at the version the caller expected; nothing was appended."""

    def __init__(self, stream: str, expected: int, current: int) -> None:
        super().__init__(f"stream {stream!r} is at version {current}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.current = current


class UnknownEventType(EventStoreError):
    """A stored event's type tag names no event this code knows: never skipped silently."""

    def __init__(self, tag: str) -> None:
        super().__init__(f"unknown event type {tag!r}")
        self.tag = tag


class DuplicateEvent(EventStoreError):
    """An event with this id is already stored."""
