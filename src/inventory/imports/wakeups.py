"""Wake-ups for import jobs: a Dramatiq message naming a job. The job row is the truth; a
lost message costs only latency (the worker's sweep queues what no message announced)."""

from __future__ import annotations

import dramatiq
import structlog

log = structlog.get_logger(__name__)

QUEUE = "imports"
ACTOR = "run_import"


def wake(job_id: str) -> None:
    """Ask a worker to run the job; built by name, so the API never imports the worker."""
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=QUEUE, actor_name=ACTOR, args=(job_id,), kwargs={}, options={}
    )
    try:
        dramatiq.get_broker().enqueue(message)
    except Exception as error:  # noqa: BLE001 - the sweep queues it a little later
        log.warning("import wake-up not sent", job=job_id, error=str(error))
