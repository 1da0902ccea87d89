"""OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: without it
nothing of OpenTelemetry is imported and nothing is paid per request."""

from __future__ import annotations

import os
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
INSTALL = "uv pip install 'inventory[otel]' (or: uv sync --extra otel)"


class _State:
    """Whether this process traces (set once by `configure`)."""

    active = False
    warned = False  # the missing extra is said once per process


def requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces."""
    env = os.environ if env is None else env
    return bool(env.get(ENDPOINT, "").strip())


def active() -> bool:
    """Whether `configure` turned tracing on in this process."""
    return _State.active


def configure(service: str, env: Mapping[str, str] | None = None) -> bool:
    """When asked for, export spans over OTLP/HTTP (the exporter reads the standard
    OTEL_* variables: endpoint, headers, timeout) and trace psycopg's statements; the
    service is `inventory-<service>` unless OTEL_SERVICE_NAME names it. True when on."""
    env = os.environ if env is None else env
    if _State.active or not requested(env):
        return _State.active
    try:
        # Imported only here: the base install carries none of these packages.
        from inventory.runtime import otel_setup  # noqa: PLC0415
    except ImportError as error:
        if _State.warned:
            return False
        _State.warned = True
        log.warning(
            f"{ENDPOINT} is set but the OpenTelemetry packages are not installed: "
            f"running without traces; install them with {INSTALL}",
            missing=error.name,
        )
        return False
    name = env.get("OTEL_SERVICE_NAME") or f"inventory-{service}"
    otel_setup.install(name)
    _State.active = True
    log.info("tracing on: spans exported over OTLP/HTTP", service=name)
    return True


def shutdown() -> None:
    """Export the spans still buffered (at a clean exit)."""
    if _State.active:
        from inventory.runtime import otel_setup  # noqa: PLC0415

        otel_setup.shutdown()
