"""Whole numbers written as text (query values, path segments, cursors, the feed's `after`):
ASCII decimal digits, one spelling per value, within the declared bounds and a bigint.

Litestar converts a query value to `int` with msgspec's lax rules, which read `1e3` as
1000 and `1.0` as 1; Python's `int()` takes `+1`, ` 1`, `1_000` and every Unicode digit
(Arabic-Indic `٣`, fullwidth ones). Each would be a silent reinterpretation of what the
client wrote, so every integer the API reads from text is checked here first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
# `[0-9]`, never `\d` (which takes every Unicode digit). No leading zeros and no `-0`, as
# in JSON: each value has one spelling, the one the API writes itself.
DECIMAL = re.compile(r"0|-?[1-9][0-9]*")
LONGEST = len(str(BIGINT_MIN))  # longer text lies outside a bigint: never handed to int()


@dataclass(frozen=True)
class Bounds:
    """The values a whole number may take, both ends included (at most a bigint's)."""

    lowest: int = BIGINT_MIN
    highest: int = BIGINT_MAX

    @classmethod
    def declared(cls, *constraints: Any) -> Bounds:
        """The bounds that `ge`, `gt`, `le` and `lt` of each constraint (a Litestar
        `Parameter`, a `msgspec.Meta`) leave within a bigint."""
        lowest, highest = BIGINT_MIN, BIGINT_MAX
        for constraint in constraints:
            if (ge := getattr(constraint, "ge", None)) is not None:
                lowest = max(lowest, math.ceil(ge))
            if (gt := getattr(constraint, "gt", None)) is not None:
                lowest = max(lowest, math.floor(gt) + 1)
            if (le := getattr(constraint, "le", None)) is not None:
                highest = min(highest, math.floor(le))
            if (lt := getattr(constraint, "lt", None)) is not None:
                highest = min(highest, math.ceil(lt) - 1)
        return cls(lowest, highest)

    def expected(self) -> str:
        """What a client must send, as a problem's message says it."""
        sign = "an optional `-` then " if self.lowest < 0 else ""
        return (
            f"Expected an integer from {self.lowest} to {self.highest}: {sign}ASCII digits "
            "0-9 alone (no `+`, point, exponent, spaces, `_` or leading zeros)."
        )


def parse(text: str, bounds: Bounds) -> int | None:
    """The value `text` spells, or None unless it is a decimal integer within `bounds`."""
    if len(text) > LONGEST or DECIMAL.fullmatch(text) is None:
        return None
    value = int(text)
    return value if bounds.lowest <= value <= bounds.highest else None
