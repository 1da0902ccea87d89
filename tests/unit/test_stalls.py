"""A stall names the projector, the store, the event and the error, and nothing more: an
error's message is kept to its first line (a database error's DETAIL and CONTEXT lines
may quote the row's values), with its SQLSTATE, and bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from hypothesis import given
from hypothesis import strategies as st

from inventory.projectors.stalls import MAX_ERROR, Stall, describe_error
from inventory.readmodels.projection import ReplicaEvent


class Failure(Exception):
    """An error raised by a projector."""


@given(st.text(), st.text())
def test_an_error_is_kept_to_its_first_line_and_bounded(first: str, rest: str) -> None:
    text = f"{first}\n{rest}"
    _, message = describe_error(Failure(text))
    assert "\n" not in message and "\r" not in message
    assert len(message) <= MAX_ERROR
    # One line of the text (the first that is not blank), or the class's name.
    assert message == "Failure" or any(message in line for line in text.splitlines())


def test_a_database_error_is_named_with_its_class_and_sqlstate() -> None:
    error = psycopg.errors.RaiseException("a projector bug\nCONTEXT: PL/pgSQL function")
    assert describe_error(error) == (
        "psycopg.errors.RaiseException",
        "[P0001] a projector bug",
    )
    assert describe_error(ValueError()) == ("ValueError", "ValueError")


def test_a_stall_describes_the_projector_the_store_the_event_and_the_error() -> None:
    now = datetime.now(UTC)
    event = ReplicaEvent(
        12,
        34,
        "stock-s1-A",
        3,
        "stock.sold",
        "s1",
        "A",
        b'{"secret": "payload"}',
        b"{}",
        now,
        now,
        "s1",
    )
    stall = Stall.of("stock", event, Failure("boom"))
    assert stall.describe() == (
        "projector stock stalled in store s1 at event seq 12 (position 34, stream "
        "stock-s1-A, type stock.sold): tests.unit.test_stalls.Failure: boom"
    )
    assert "payload" not in str(stall.as_dict())
