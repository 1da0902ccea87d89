"""Position marks: a body rendered once before the positions, filled in after."""

from __future__ import annotations

import msgspec
import pytest

from inventory.eventstore.positions import fill
from inventory.service.result import CommandResult, EventView, LevelView, marked

LEVEL = LevelView("s1", "P-1", 3, 0, 3, 0, 0, 7)


def result(*positions: int) -> CommandResult:
    events = [EventView(p, f"stock-s1-P-{n}", n, "stock.sold") for n, p in enumerate(positions)]
    return CommandResult("c-1", max(positions, default=None), events, [LEVEL])


def test_a_marked_result_filled_with_the_positions_is_the_result_rendered_with_them() -> None:
    rendered = msgspec.json.encode(marked(result(0, 0, 0)))

    assert fill(rendered, [41, 42, 44]) == msgspec.json.encode(result(41, 42, 44))


def test_a_result_without_events_has_no_mark() -> None:
    rendered = msgspec.json.encode(marked(result()))

    assert fill(rendered, []) == rendered == msgspec.json.encode(result())


def test_a_control_character_in_a_string_is_escaped_so_never_read_as_a_mark() -> None:
    body = msgspec.json.encode({"note": "a\x1e1\x1eb"})

    assert fill(body, [9]) == body


def test_an_unclosed_mark_is_an_error() -> None:
    with pytest.raises(ValueError, match="not closed"):
        fill(b'{"position":\x1e1}', [9])
