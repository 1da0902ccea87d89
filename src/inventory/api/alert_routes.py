"""Alerts: the list people act on, and their acknowledgement (api.md, Queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter

from inventory.api import reads
from inventory.api.commands import actor_of
from inventory.api.errors import ApiError, Problem
from inventory.api.query_views import Quantity, decode_int_cursor, encode_cursor, quantity
from inventory.readmodels.alert_reads import AlertRow, AlertState, alerts, one_alert
from inventory.security.policy import RouteClass, protect, require_store
from inventory.security.principal import Principal
from inventory.service.acknowledgements import NOTE_LENGTH, AlertAcknowledged, acknowledge

ApiRequest = Request[Principal, Any, State]
AlertKind = Literal["low_stock", "negative_stock", "count_discrepancy"]
Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
Cursor = Annotated[str | None, Parameter(description="`next_cursor` of the previous page.")]
MinPosition = Annotated[int | None, reads.MinPosition]
AlertId = Annotated[int, Parameter(ge=1, le=2**63 - 1, description="The alert's `id`.")]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """An open alert with enough to act on it: the product, the item's `available` now
    against its reorder point, since when, and who acknowledged it (null: nobody yet)."""

    id: int
    kind: AlertKind
    store: str
    sku: str
    name: str | None
    unit: str | None
    available: Quantity | None
    reorder_min: Quantity | None
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    opened_seq: int
    details: dict[str, Any]


class AcknowledgedAlert(Alert, frozen=True, kw_only=True):
    """The alert after its acknowledgement, with the `position` a read waits on."""

    position: int | None


class AlertPage(msgspec.Struct):
    """A page of alerts."""

    items: list[Alert]
    next_cursor: str | None


class Acknowledgement(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/alerts/{id}/acknowledge`: an optional note for whoever looks next."""

    note: Annotated[str, msgspec.Meta(min_length=1, max_length=NOTE_LENGTH)] | None = None


def _alert(row: AlertRow) -> Alert:
    return Alert(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]  # the table's CHECK holds it to AlertKind
        store=row.store,
        sku=row.sku,
        name=row.name,
        unit=row.unit,
        available=quantity(row.available, row.decimals),
        reorder_min=quantity(row.reorder_min, row.decimals),
        opened_at=row.opened_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        note=row.note,
        opened_seq=row.opened_seq,
        details=row.details,
    )


class AlertController(Controller):
    """Open alerts and their acknowledgement."""

    path = "/v1/alerts"
    tags = ("queries",)

    @get("/", summary="Open alerts", **protect(RouteClass.QUERY, store="store"))
    async def list_alerts(
        self,
        *,
        request: ApiRequest,
        state: State,
        store: str | None = None,
        kind: AlertKind | None = None,
        alert_state: Annotated[
            AlertState,
            QueryParameter(
                name="state",
                description="`open`: not acknowledged yet; `acknowledged`; `all` (default).",
            ),
        ] = "all",
        cursor: Cursor = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[AlertPage]:
        """Every role, within its stores: open low-stock, negative-stock and
        count-discrepancy alerts, oldest first, each with the product's name and unit, the
        item's `available` now against `reorder_min`, and its acknowledgement. An alert
        leaves the list once its condition clears (stock received, a recount)."""
        after, stores = decode_int_cursor(cursor), request.user.scoped([store] if store else None)
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            rows = await alerts(
                conn, after=after, stores=stores, kind=kind, state=alert_state, limit=limit
            )
        items = [_alert(row) for row in rows]
        next_cursor = encode_cursor(items[-1].id) if len(items) == limit else None
        return Response(AlertPage(items, next_cursor), headers=headers)

    # `:str`, not `:int`: the door (api/door.py) checks the id's digits as sent, where
    # Litestar's `:int` would take anything `int()` does (`+1`, `٣`, `1_000`).
    @post(
        "/{alert_id:str}/acknowledge",
        status_code=200,
        summary="Acknowledge an alert",
        **protect(
            RouteClass.MANAGER_COMMAND,
            responses={
                404: ResponseSpec(Problem, description="alert_not_found"),
                409: ResponseSpec(Problem, description="alert_closed"),
                422: ResponseSpec(Problem, description="validation_failed"),
            },
        ),
    )
    async def acknowledge_alert(
        self,
        request: ApiRequest,
        state: State,
        alert_id: AlertId,
        data: JSONBody[Acknowledgement],
    ) -> AcknowledgedAlert:
        """A manager of the alert's store, or an admin: 200 with the alert, acknowledged
        by the caller with the note (at most 1000 characters), and the `position` to read
        it at. An alert already acknowledged keeps its first acknowledgement (200, the
        same answer: retries are safe). 404 `alert_not_found`, 403 for another store's
        alert, 409 `alert_closed` once its condition has cleared."""
        async with state.resources.replica.connection() as conn:
            row = await one_alert(conn, alert_id)
        if row is None:
            raise ApiError(404, "alert_not_found", f"No alert has the id {alert_id}.")
        require_store(request.user, row.store)
        if row.closed:
            raise ApiError(409, "alert_closed", "The alert's condition has cleared already.")
        view = msgspec.structs.asdict(_alert(row))
        if row.acknowledged_at is not None:
            return AcknowledgedAlert(**view, position=None)
        by = request.user.name
        event = AlertAcknowledged(row.store, row.sku, row.kind, row.opened_position, by, data.note)
        async with state.resources.primary.connection() as conn:
            done = await acknowledge(conn, actor_of(request), event)
        view |= {
            "acknowledged_at": done.acknowledged_at,
            "acknowledged_by": done.acknowledged_by,
            "note": done.note,
        }
        return AcknowledgedAlert(**view, position=done.position)
