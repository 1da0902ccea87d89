"""Wake-ups for webhook delivery: a Dramatiq message naming a subscription. The database
holds what is due; a lost message costs only latency (the worker's sweep finds it)."""

from __future__ import annotations

import dramatiq
import structlog

log = structlog.get_logger(__name__)

QUEUE = "webhooks"
ACTOR = "deliver_webhooks"


def wake(subscription_ids: list[str]) -> None:
    """Ask the workers to deliver what is due for these subscriptions. The message is
    built by name: the API sends it without importing the worker's actors."""
    broker = dramatiq.get_broker()
    for subscription_id in subscription_ids:
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=QUEUE, actor_name=ACTOR, args=(subscription_id,), kwargs={}, options={}
        )
        try:
            broker.enqueue(message)
        except Exception as error:  # noqa: BLE001 - the sweep delivers it a little later
            log.warning("webhook wake-up not sent", subscription=subscription_id, error=str(error))
