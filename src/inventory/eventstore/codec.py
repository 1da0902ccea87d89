"""Events to and from JSON under stable type tags (never module paths)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from inventory.eventstore.errors import UnknownEventType


def tag_of(event_type: type[msgspec.Struct]) -> str:
    """The stable tag an event class declares with `class X(Struct, tag="stock.sold")`."""
    tag = event_type.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{event_type.__name__} must declare a string tag")
    return tag


class Codec:
    """Encodes known event types and decodes stored ones; unknown tags are an error."""

    def __init__(self, event_types: Iterable[type[msgspec.Struct]]) -> None:
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        for event_type in event_types:
            tag = tag_of(event_type)
            if tag in self._decoders:
                raise ValueError(f"two event types share the tag {tag!r}")
            self._decoders[tag] = msgspec.json.Decoder(event_type)
        self._encoder = msgspec.json.Encoder()

    @property
    def tags(self) -> frozenset[str]:
        """Every tag this codec knows."""
        return frozenset(self._decoders)

    def encode(self, event: msgspec.Struct) -> tuple[str, bytes]:
        """(tag, JSON) for a known event; the JSON carries the tag in its `type` field."""
        tag = tag_of(type(event))
        if tag not in self._decoders:
            raise UnknownEventType(tag)
        return tag, self._encoder.encode(event)

    def decode(self, tag: str, data: bytes | str) -> msgspec.Struct:
        """The event stored under `tag`; raises UnknownEventType for a tag we do not know."""
        decoder = self._decoders.get(tag)
        if decoder is None:
            raise UnknownEventType(tag)
        event: msgspec.Struct = decoder.decode(data)
        return event
