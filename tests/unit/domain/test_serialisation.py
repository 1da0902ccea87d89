"""Every event round-trips through the event store's codec, every state through JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as types
import pytest

from inventory.domain.events import ALL_EVENTS
from inventory.domain.state import STATE_TYPES, decode_state, initial_state
from inventory.domain.streams import kind_of
from inventory.eventstore.codec import Codec, tag_of
from tests.unit.domain.scenario import NOW

SIMPLE: dict[type[types.Type], Any] = {
    types.StrType: "x-1",
    types.DecimalType: Decimal("12.345"),
    types.DateTimeType: NOW,
    types.BoolType: True,
    types.IntType: 2,
}


def sample(kind: types.Type) -> Any:
    """A value of `kind` that is never a field's default, so every field is exercised."""
    if type(kind) in SIMPLE:
        return SIMPLE[type(kind)]
    match kind:
        case types.LiteralType():
            return kind.values[-1]
        case types.UnionType():
            return sample(next(t for t in kind.types if not isinstance(t, types.NoneType)))
        case types.VarTupleType():
            return (sample(kind.item_type), sample(kind.item_type))
        case types.DictType():
            return {"A": sample(kind.value_type), "B": sample(kind.value_type)}
        case types.StructType():
            return kind.cls(**{field.name: sample(field.type) for field in kind.fields})
        case _:
            raise AssertionError(f"no sample for {kind}")


def filled(cls: type[msgspec.Struct]) -> Any:
    """An instance of `cls` with every field set."""
    return sample(types.type_info(cls))


def test_every_event_tag_is_unique_and_namespaced() -> None:
    tags = [tag_of(event_type) for event_type in ALL_EVENTS]
    assert len(tags) == len(set(tags))
    assert all(
        tag.split(".")[0] in {"store", "product", "stock", "sale", "transfer", "reservation"}
        for tag in tags
    )


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=tag_of)
def test_every_event_round_trips_through_the_codec(event_type: type[msgspec.Struct]) -> None:
    codec = Codec(ALL_EVENTS)
    event = filled(event_type)
    tag, data = codec.encode(event)
    assert tag == tag_of(event_type)
    assert msgspec.json.decode(data)["type"] == tag
    assert codec.decode(tag, data) == event


@pytest.mark.parametrize("kind", sorted(STATE_TYPES))
def test_every_state_round_trips_through_json(kind: str) -> None:
    stream = f"{kind}-s1-x"
    assert kind_of(stream) == kind
    state = filled(STATE_TYPES[kind])
    assert decode_state(stream, msgspec.json.encode(state)) == state
    assert decode_state(stream, None) == initial_state(stream)


def test_quantities_are_stored_as_exact_decimal_strings() -> None:
    state = filled(STATE_TYPES["stock"])
    assert b'"12.345"' in msgspec.json.encode(state)
