"""Decisions of shelf counts: absolute, guarded by `expected_version`, anchoring `on_hand`."""

from __future__ import annotations

from inventory.domain.admission import Amount, admitted, stock_change
from inventory.domain.commands import CountStock
from inventory.domain.context import Change, Context
from inventory.domain.errors import VersionConflict
from inventory.domain.events import StockCounted
from inventory.domain.rules import reject_if
from inventory.domain.stock_evolution import count_is_resolvable
from inventory.domain.streams import stock_stream


def count_stock(command: CountStock, context: Context) -> list[Change]:
    """Absolute counts: guarded by `expected_version`, anchoring `on_hand` (rule 3)."""
    amounts = [
        Amount(index, line.sku, "counted", line.counted, "non_negative")
        for index, line in enumerate(command.lines)
    ]
    admitted(context, command.store_id, command, amounts)
    check_versions(command, context)
    reject_if(
        [
            {"line": index, "sku": line.sku, "field": "occurred_at", "message": TOO_OLD}
            for index, line in enumerate(command.lines)
            if not count_is_resolvable(
                context.stock(command.store_id, line.sku), command.occurred_at
            )
        ]
    )
    return [
        stock_change(
            StockCounted(
                store_id=command.store_id,
                sku=line.sku,
                occurred_at=command.occurred_at,
                counted=line.counted,
                note=command.note,
            ),
            line.expected_version,
        )
        for line in command.lines
    ]


def check_versions(command: CountStock, context: Context) -> None:
    """VersionConflict listing every line whose stream is not at its `expected_version`."""
    conflicts = []
    for line in command.lines:
        current = context.version(stock_stream(command.store_id, line.sku))
        if line.expected_version is not None and line.expected_version != current:
            conflicts.append(
                {
                    "sku": line.sku,
                    "expected_version": line.expected_version,
                    "current_version": current,
                }
            )
    if conflicts:
        raise VersionConflict("stock moved since the expected version", conflicts)


TOO_OLD = (
    "the count is dated before the movements this item still itemises since its latest "
    "count; date it later or recount"
)
