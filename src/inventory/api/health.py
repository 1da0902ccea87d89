"""Liveness and readiness: every dependency checked, the failing ones named."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from inventory.projectors import stalls
from inventory.projectors.backlog import backlogs
from inventory.readmodels.registry import projector_names
from inventory.runtime import replication_status
from inventory.runtime.resources import Resources
from inventory.runtime.standby_status import Standby, standby_status

CHECK_TIMEOUT = 2.0


class Check(msgspec.Struct, omit_defaults=True):
    """One dependency's state."""

    ok: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] | None = None


class Readiness(msgspec.Struct):
    """The readiness answer: `failing` names every check that is not ok."""

    status: str
    failing: list[str]
    checks: dict[str, Check]


class Liveness(msgspec.Struct):
    """The process answers."""

    status: str


class CheckFailed(Exception):
    """A dependency answered, but not as a healthy one would (`detail`: what it said)."""

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail


async def _primary(r: Resources) -> dict[str, Any]:
    async with r.primary.connection(timeout=CHECK_TIMEOUT) as conn:
        await replication_status.ping(conn)
    return {}


def _standby_lag(standby: Standby, max_seconds: float) -> dict[str, Any]:
    """A standby of the replica serves as well as its replay is recent: no apply worker
    runs there (notes: a standby's subscription is a copy), so its lag stands in for one."""
    detail = {
        "standby": True,
        "replay_lag_seconds": round(standby.replay_lag_seconds, 3),
        "replay_lag_bytes": standby.replay_lag_bytes,
    }
    if not standby.streaming:
        raise CheckFailed("the standby is not receiving WAL from its upstream", detail)
    if standby.replay_lag_seconds > max_seconds:
        raise CheckFailed(
            f"the standby's replay is {standby.replay_lag_seconds:.1f} s behind "
            f"(more than {max_seconds:g} s)",
            detail,
        )
    return detail


async def _replica(r: Resources) -> dict[str, Any]:
    """The read side (INVENTORY_READ_URL): it answers, and a standby there keeps up."""
    async with r.replica.connection(timeout=CHECK_TIMEOUT) as conn:
        standby = await standby_status(conn)
    if standby.in_recovery:
        return _standby_lag(standby, r.settings.max_standby_lag_seconds)
    return {}


async def _subscription(r: Resources) -> dict[str, Any]:
    async with r.replica_itself.connection(timeout=CHECK_TIMEOUT) as conn:
        standby = await standby_status(conn)
        if standby.in_recovery:
            return _standby_lag(standby, r.settings.max_standby_lag_seconds)
        row = await replication_status.subscription_status(conn)
    if row is None:
        raise CheckFailed("the subscription does not exist; run `inventory migrate`")
    enabled, running, last_message = row
    if not enabled:
        raise CheckFailed("the subscription is disabled")
    if not running:
        raise CheckFailed("the subscription's apply worker is not running")
    return {"last_message_at": last_message.isoformat() if last_message else None}


async def _replication(r: Resources) -> dict[str, Any]:
    async with r.primary.connection(timeout=CHECK_TIMEOUT) as conn:
        row = await replication_status.slot_status(conn)
    if row is None:
        raise CheckFailed("the primary has no replication slot for the replica")
    active, lag_bytes = row
    if not active:
        raise CheckFailed("no replica is streaming from the primary's slot")
    if lag_bytes is not None and lag_bytes > r.settings.max_replication_lag_bytes:
        raise CheckFailed(f"the replica is {lag_bytes} bytes of WAL behind")
    return {"lag_bytes": lag_bytes}


async def _projections(r: Resources) -> dict[str, Any]:
    max_events = r.settings.max_projection_lag_events
    max_seconds = r.settings.max_projection_lag_seconds
    async with r.replica.connection(timeout=CHECK_TIMEOUT) as conn:
        stalled = await stalls.live_async(conn)
        # One more than the allowance: enough to tell "over" from "at", and no more.
        behind = await backlogs(conn, projector_names(), limit=max_events + 1, max_age=max_seconds)
    if stalled:
        raise _stalled(stalled)
    over = [
        b
        for b in behind
        if b.oldest_age_seconds > max_seconds or (b.events is not None and b.events > max_events)
    ]
    if over:
        shown = "; ".join(b.describe() for b in over[:3])
        more = f" and {len(over) - 3} more" if len(over) > 3 else ""
        raise CheckFailed(
            f"{len(over)} projector partition(s) more than {max_events} events or "
            f"{max_seconds:g} s behind: {shown}{more}"
        )
    return {
        "partitions_behind": len(behind),
        "most_events_behind": max((b.events or 0 for b in behind), default=0),
        "oldest_unprojected_seconds": round(behind[0].oldest_age_seconds, 3) if behind else 0,
    }


def _stalled(found: list[stalls.Stall]) -> CheckFailed:
    """A projector cannot apply an event: name each (projector, store, event, error)."""
    shown = "; ".join(stall.describe() for stall in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return CheckFailed(
        f"{len(found)} projector partition(s) stalled: {shown}{more}",
        {"stalls": [stall.as_dict() for stall in found[:20]], "stalled": len(found)},
    )


async def _redis(r: Resources) -> dict[str, Any]:
    await r.redis.ping()
    return {}


CHECKS: dict[str, Callable[[Resources], Awaitable[dict[str, Any]]]] = {
    "primary": _primary,
    "replica": _replica,
    "subscription": _subscription,
    "replication": _replication,
    "projections": _projections,
    "redis": _redis,
}


async def _run(check: Callable[[Resources], Awaitable[dict[str, Any]]], r: Resources) -> Check:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(r), CHECK_TIMEOUT + 0.5)
    except Exception as error:  # noqa: BLE001 - a failed check is an answer, not a crash
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        message = str(error) or type(error).__name__
        said = error.detail if isinstance(error, CheckFailed) else None
        return Check(ok=False, latency_ms=elapsed, error=message.splitlines()[0], detail=said)
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return Check(ok=True, latency_ms=elapsed, detail=detail or None)


async def readiness(resources: Resources) -> Readiness:
    """Run every check at once; the service is ready when all pass."""
    results = await asyncio.gather(*(_run(check, resources) for check in CHECKS.values()))
    checks = dict(zip(CHECKS, results, strict=True))
    failing = [name for name, check in checks.items() if not check.ok]
    return Readiness(status="failing" if failing else "ok", failing=failing, checks=checks)


class HealthController(Controller):
    """`/health/live` for the process, `/health/ready` for everything it depends on."""

    path = "/health"
    tags = ("operations",)
    include_in_schema = True

    @get("/live", summary="The process is up")
    async def live(self) -> Liveness:
        """Answers 200 while the process can serve requests at all."""
        return Liveness(status="ok")

    @get(
        "/ready",
        summary="Every dependency is reachable",
        responses={503: ResponseSpec(data_container=Readiness, description="A dependency is down")},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        """200 when the primary, replica, subscription, replication, projections and Redis
        are healthy; 503 naming the failing checks otherwise."""
        result = await readiness(state.resources)
        status = HTTP_503_SERVICE_UNAVAILABLE if result.failing else HTTP_200_OK
        return Response(result, status_code=status, headers={"Cache-Control": "no-store"})
