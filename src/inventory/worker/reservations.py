"""Reservation expiry: a delayed message at `expires_at`, and a sweep for lost ones.

A message is only a reminder: the ExpireReservation command decides on the reservation's
state, so a duplicate, a late message, or one for a reservation released meanwhile
changes nothing. The sweep asks the primary for active reservations past their expiry
and sends a reminder for each, so a worker restart or a lost Redis loses none.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dramatiq
import structlog

from inventory.domain.authority import SYSTEM
from inventory.domain.commands import ExpireReservation
from inventory.domain.errors import CommandRejected
from inventory.domain.events import ReservationPlaced
from inventory.eventstore.overdue import overdue_reservations
from inventory.runtime.resources import retry_when
from inventory.service import Actor, Decision
from inventory.worker.context import current

log = structlog.get_logger(__name__)

EXPIRY = Actor(
    id="system:reservation-expiry", kind="system", name="reservation expiry", role="system"
)


@dramatiq.actor(
    queue_name="reservations", retry_when=retry_when(20), min_backoff=1_000, max_backoff=60_000
)
async def expire_reservation(store_id: str, reservation_id: str) -> None:
    """Expire the reservation if it is still active and due; otherwise do nothing."""
    structlog.contextvars.bind_contextvars(store=store_id, reservation=reservation_id)
    at = datetime.now(UTC)
    command = ExpireReservation(
        store_id=store_id,
        reservation_id=reservation_id,
        occurred_at=at,
        now=at,
        authority=SYSTEM,  # the service's own command: no clerk's backdating limit
    )
    service = await current().commands.get()
    try:
        await service.handle(command, EXPIRY, _Silent())
    except CommandRejected as refused:
        log.info("reservation not expired", code=refused.code, detail=refused.detail)
        return
    log.info("reservation expired")


class _Silent:
    """Expiry has no client to answer: nothing is stored (no idempotency key)."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        return 201, b""

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        return 409, b""


def schedule(decision: Decision) -> None:
    """After a commit: a reminder at `expires_at` for each reservation the command placed."""
    for event in decision.events:
        if isinstance(event, ReservationPlaced) and event.expires_at is not None:
            delay = max(0, int((event.expires_at - datetime.now(UTC)).total_seconds() * 1000))
            try:
                expire_reservation.send_with_options(
                    args=(event.store_id, event.reservation_id), delay=delay
                )
            except Exception as error:  # noqa: BLE001 - the commit stands; the sweep expires it
                log.warning("expiry not scheduled; the sweep will expire it", error=str(error))


def sweep_overdue(primary_url: str) -> int:
    """Send a reminder for every active reservation past `expires_at`; returns how many."""
    rows = overdue_reservations(primary_url)
    for store_id, reservation_id in rows:
        expire_reservation.send(store_id, reservation_id)
    return len(rows)
