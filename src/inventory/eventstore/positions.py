"""Position marks: a response rendered before its events have positions, filled in after."""

# The primary gives events their positions only as it inserts them, in the round trip
# that also stores the response and commits. So a response naming positions is rendered
# once, before that round trip, with a mark where each position goes: MARK, the event's
# place (1, 2, ... in the order the append inserts them; 0 for the highest position),
# MARK. The byte 0x1e cannot occur in JSON otherwise (a string escapes every control
# character), so a mark is never mistaken for data. The primary replaces the marks in the
# stored response (response_with_positions, migrations/0060) and `fill` the same way in
# the one sent: both carry the same bytes, and a replay sends the stored ones as they are.

from __future__ import annotations

from collections.abc import Sequence

import msgspec

MARK = b"\x1e"


def mark(place: int) -> msgspec.Raw:
    """Where the position of the event at `place` goes (0: the highest of them)."""
    return msgspec.Raw(MARK + str(place).encode() + MARK)


def fill(body: bytes, positions: Sequence[int]) -> bytes:
    """`body` with each mark replaced by its position; `positions` in insertion order."""
    pieces = body.split(MARK)
    if len(pieces) % 2 == 0:
        raise ValueError("a position mark is not closed")
    for at in range(1, len(pieces), 2):
        place = int(pieces[at])
        position = max(positions) if place == 0 else positions[place - 1]
        pieces[at] = str(position).encode()
    return b"".join(pieces)
