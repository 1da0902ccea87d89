"""What follows a commit: wake-ups (one message per store touched) and expiry reminders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from inventory.service import Decision

log = structlog.get_logger(__name__)


def wake(partitions: Iterable[str | None]) -> None:
    """Ask the workers to project these partitions. A lost message costs only latency:
    the sweep finds what no message announced."""
    from inventory.worker.actors import wake_projectors  # noqa: PLC0415 - needs the broker

    for partition in sorted({p or "" for p in partitions}):
        try:
            wake_projectors.send(partition)
        except Exception as error:  # noqa: BLE001 - the commit stands; the sweep catches up
            log.warning(
                "wake-up not sent; the sweep will catch up", partition=partition, error=str(error)
            )


def after_commit(decisions: Sequence[Decision]) -> None:
    """Everything the command service does once commands have committed: one wake-up per
    store they touched, and the expiry reminders of the reservations they placed."""
    from inventory.worker import reservations  # noqa: PLC0415 - needs the broker

    wake(partition for decision in decisions for partition in decision.partitions)
    for decision in decisions:
        reservations.schedule(decision)
