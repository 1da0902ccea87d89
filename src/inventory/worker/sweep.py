"""The worker's periodic sweep: what wake-ups and delayed messages may have missed."""

from __future__ import annotations

import threading

import structlog

from inventory.worker import actors, imports, reports, reservations, webhooks
from inventory.worker.context import WorkerContext

log = structlog.get_logger(__name__)


def _sweep_forever(context: WorkerContext, stop: threading.Event) -> None:
    settings = context.settings
    while not stop.wait(settings.sweep_interval_seconds):
        try:
            applied = actors.sweep(context)
            overdue = reservations.sweep_overdue(settings.primary_url)
            requeued = reports.requeue_stale(context)
            expired = reports.expire_finished(context, settings.report_retention_days)
            webhooks.sweep(context)
            imports.sweep(context)
            outcomes = imports.expire_finished(context)
        except Exception:  # the sweep must outlive a replica or primary restart
            log.exception("sweep failed; retrying next interval")
            continue
        if applied:
            log.info("sweep projected events a wake-up missed", events=applied)
        if overdue:
            log.info("sweep found reservations past their expiry", reservations=overdue)
        if requeued:
            log.info("sweep re-sent reports whose message was lost", reports=requeued)
        if expired:
            log.info("sweep deleted reports past their retention", reports=expired)
        if outcomes.jobs or outcomes.rows:
            log.info("sweep deleted imports past their retention", **vars(outcomes))


def start_background(context: WorkerContext, stop: threading.Event) -> None:
    """Start the periodic sweep; it runs until `stop` is set."""
    thread = threading.Thread(
        target=_sweep_forever,
        args=(context, stop),
        name="projection-sweep",
        daemon=True,
    )
    thread.start()
