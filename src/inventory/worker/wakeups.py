"""Wake-ups sent after a command commits: one message per store the command touched."""

from __future__ import annotations

from collections.abc import Iterable

import structlog

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
