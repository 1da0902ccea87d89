"""Every projector the worker runs. A new read model is one more entry here."""

from __future__ import annotations

from inventory.projectors.catalog import Catalog
from inventory.projectors.daily_movements import DailyMovements
from inventory.projectors.engine import Projector
from inventory.projectors.stock_levels import StockLevels
from inventory.projectors.stream_heads import StreamHeads

PROJECTORS: tuple[Projector, ...] = (StreamHeads(), StockLevels(), Catalog(), DailyMovements())


def by_name(name: str) -> Projector:
    """The projector called `name`, or KeyError listing the known ones."""
    for projector in PROJECTORS:
        if projector.name == name:
            return projector
    known = ", ".join(p.name for p in PROJECTORS)
    raise KeyError(f"no projector {name!r}; known: {known}")
