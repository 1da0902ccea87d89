"""Quantities as the reports show them (the same values whatever the product's decimals)."""

from __future__ import annotations

from decimal import Decimal


def quantity(value: Decimal | None) -> int | str | None:
    """api.md quantities: an integer when whole, else an exact decimal string."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return format(value.normalize(), "f")
