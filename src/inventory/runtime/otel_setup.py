"""The OpenTelemetry SDK set up for this process; imported by runtime/telemetry.py only
when traces are asked for (it needs the `otel` extra)."""

from __future__ import annotations

# The `otel` extra may be absent where mypy runs: then these are untyped.
from opentelemetry import trace  # type: ignore[import-not-found,unused-ignore]
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
    OTLPSpanExporter,
)
from opentelemetry.instrumentation.psycopg import (  # type: ignore[import-not-found,unused-ignore]
    PsycopgInstrumentor,
)
from opentelemetry.sdk.resources import (  # type: ignore[import-not-found,unused-ignore]
    SERVICE_NAME,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider  # type: ignore[import-not-found,unused-ignore]
from opentelemetry.sdk.trace.export import (  # type: ignore[import-not-found,unused-ignore]
    BatchSpanProcessor,
)


def install(service_name: str) -> None:
    """Export spans over OTLP/HTTP (the exporter reads the standard OTEL_* variables:
    endpoint, headers, timeout) and trace psycopg's statements."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # No SQL commenter: it would rewrite every statement (and defeat prepared ones).
    PsycopgInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)


def shutdown() -> None:
    """Export what is still buffered and stop exporting."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
