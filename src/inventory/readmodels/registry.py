"""Every projector the worker runs (the engine, projectors/, runs their handlers). A new
read model is one more entry here."""

from __future__ import annotations

from inventory.readmodels.catalog import Catalog
from inventory.readmodels.daily_movements import DailyMovements
from inventory.readmodels.projection import Projector
from inventory.readmodels.stock_levels.projector import StockLevels
from inventory.readmodels.stream_heads import StreamHeads

PROJECTORS: tuple[Projector, ...] = (StreamHeads(), StockLevels(), Catalog(), DailyMovements())


def by_name(name: str) -> Projector:
    """The projector called `name`, or KeyError listing the known ones."""
    for projector in PROJECTORS:
        if projector.name == name:
            return projector
    known = ", ".join(p.name for p in PROJECTORS)
    raise KeyError(f"no projector {name!r}; known: {known}")


def projector_names() -> list[str]:
    """The names of every projector: what queries and the feed wait for (one read side)."""
    return [projector.name for projector in PROJECTORS]
