"""Dramatiq spans: the sender's trace context rides in each message's options, and the
worker processes the message in a CONSUMER span under it. Imported only when tracing is
on (runtime/telemetry.py): it needs the `otel` extra."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq

# The `otel` extra may be absent where mypy runs: then these are untyped.
from opentelemetry import context, propagate, trace  # type: ignore[import-not-found,unused-ignore]
from opentelemetry.trace import (  # type: ignore[import-not-found,unused-ignore]
    SpanKind,
    Status,
    StatusCode,
)

CARRIER = "otel_context"  # the message option holding the W3C trace context
tracer = trace.get_tracer("inventory.worker")


class TracingMiddleware(dramatiq.Middleware):
    """Injects the current trace context on enqueue; spans each message processed."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[trace.Span, Any]] = {}  # (span, context token)
        self._lock = threading.Lock()

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        """Carry the sender's trace context (the options are encoded after this hook)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            message.options[CARRIER] = carrier

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Open the message's span under the sender's context and make it current."""
        parent = propagate.extract(message.options.get(CARRIER) or {})
        span = tracer.start_span(
            f"{message.actor_name} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "messaging.operation.type": "process",
            },
        )
        token = context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[message.message_id] = (span, token)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Close the span; an exception marks it failed (without its text: no data)."""
        with self._lock:
            opened = self._open.pop(message.message_id, None)
        if opened is None:
            return
        span, token = opened
        if exception is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        context.detach(token)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """A skipped message's span ends too."""
        self.after_process_message(broker, message)
