"""Logging: structlog everywhere, JSON off a terminal, readable lines on one."""

from __future__ import annotations

import logging
import sys

import structlog

from inventory.runtime.redaction import scrub_event


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Route structlog and the standard library through one renderer.

    Context bound with `structlog.contextvars` (the request or message id) lands on every
    line, including lines from libraries that log through the standard library. Every
    line is scrubbed of credentials just before it is rendered (runtime/redaction.py).
    """
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text here, so the scrubber sees them too.
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _route_standard_library(shared, _renderer(json=json), level)


def _renderer(*, json: bool) -> structlog.types.Processor:
    if json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def _route_standard_library(
    shared: list[structlog.types.Processor], renderer: structlog.types.Processor, level: str
) -> None:
    """One stderr handler on the root logger renders every library's lines as ours."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                scrub_event,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for owned in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(owned).handlers[:] = []
        logging.getLogger(owned).propagate = True
