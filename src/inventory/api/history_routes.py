"""Event history for auditors, from the replica's events copy (api.md, Event history)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from inventory.api import integers, reads, schemas
from inventory.api.errors import ApiError, Problem
from inventory.readmodels import history
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal

ApiRequest = Request[Principal, Any, State]

Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
MinPosition = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=2**63 - 1,
        required=False,
        description="Wait (up to 5 s) until the event at this position (a command result's "
        "`position`) is in the history; 503 `read_model_lagging` otherwise. The history "
        "is the events themselves: no projector is waited for.",
    ),
]
Seq = Annotated[
    int | None,
    Parameter(ge=0, description="Resume after this `seq` (the previous page's `next_cursor`)."),
]


class HistoryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored: `seq` orders the history, `position` is the primary's number."""

    seq: int
    position: int
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    chain: str | None
    """Hex SHA-256 of the store's previous chain and this event's canonical encoding
    (docs/audit.md); null only on a replica not yet migrated."""


def _event(row: history.Row) -> HistoryEvent:
    seq, position, stream, version, type_, store, sku, occurred, recorded, data, meta, chain = row
    return HistoryEvent(
        seq=seq,
        position=position,
        stream=stream,
        version=version,
        type=type_,
        store=store,
        sku=sku,
        occurred_at=occurred,
        recorded_at=recorded,
        data=data,
        metadata=meta,
        chain=chain,
    )


def _after(after: int | None, cursor: str | None) -> int:
    if cursor is None:
        return after or 0
    if after is not None:
        raise ApiError(422, "validation_failed", "Pass `after` or `cursor`, not both.")
    seq = integers.parse(cursor, integers.Bounds(lowest=0))
    if seq is None:
        raise ApiError(422, "validation_failed", "The cursor is not one this API issued.")
    return seq


def partitions_for(principal: Principal, store: str | None) -> list[str] | None:
    """The partitions a caller sees: every one (None) only with an all-store scope and no
    `store` filter; the store-less events ('') only with an all-store scope."""
    requested = [part for part in store.split(",") if part] if store else None
    return principal.scoped(requested)


def _page(rows: list[history.Row], cursor: str | None) -> schemas.Page[HistoryEvent]:
    return schemas.Page([_event(row) for row in rows], cursor)


class HistoryController(Controller):
    """`GET /v1/events` and `GET /v1/streams/{stream}/events`."""

    path = "/v1"
    tags = ("history",)

    @get("/events", summary="Event history", **protect(RouteClass.HISTORY, store="store"))
    async def list_events(
        self,
        *,
        request: ApiRequest,
        state: State,
        after: Seq = None,
        cursor: Annotated[str | None, Parameter(description="Same as `after`.")] = None,
        limit: Limit = 100,
        store: Annotated[str | None, Parameter(description="Store id(s), comma-separated.")] = None,
        sku: str | None = None,
        event_type: Annotated[str | None, Parameter(query="type")] = None,
        min_position: MinPosition = None,
    ) -> Response[schemas.Page[HistoryEvent]]:
        """Every event in commit order (`seq`); resume with `after=<next_cursor>` and no
        event is missed or repeated (`next_cursor` is the page's last seq, null only for an
        empty page). A caller scoped to some stores sees only their events;
        events of no store (catalog, stores) need a scope of every store."""
        pool = state.resources.replica
        scope = partitions_for(request.user, store)
        single = store if store and "," not in store else None
        # The history is the replica's events copy: its answer depends on no projector.
        headers = await reads.prepare(pool, min_position, single, projected=False)
        event_filter = history.EventFilter(scope, sku, event_type)
        async with pool.connection() as conn:
            rows = await history.page(conn, event_filter, _after(after, cursor), limit)
        # The history grows: a short page still names its last seq, so a client tails
        # the log with `after=next_cursor`; only an empty page answers null.
        cursor = str(rows[-1][0]) if rows else None
        return Response(_page(rows, cursor), headers=headers)

    @get(
        "/streams/{stream:str}/events",
        summary="A stream's events",
        **protect(RouteClass.HISTORY, responses={404: ResponseSpec(Problem)}),
    )
    async def stream_events(
        self,
        *,
        request: ApiRequest,
        state: State,
        stream: str,
        from_version: Annotated[int, Parameter(ge=1, description="First version.")] = 1,
        cursor: Annotated[
            str | None, Parameter(description="`next_cursor`: the last version seen.")
        ] = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[schemas.Page[HistoryEvent]]:
        """The stream's events in version order; 404 `stream_not_found` for a stream with
        no events, and the same 404 for a stream with events of a store outside the
        caller's scope (whether such a stream exists is not the caller's business)."""
        pool = state.resources.replica
        headers = await reads.prepare(pool, min_position, projected=False)
        start = from_version if cursor is None else _after(None, cursor) + 1
        async with pool.connection() as conn:
            hidden = await _outside_scope(conn, request.user, stream)
            rows = None if hidden else await history.stream_page(conn, stream, start, limit)
        if rows is None:
            raise ApiError(404, "stream_not_found", f"No stream is called {stream!r}.")
        cursor = str(rows[-1][3]) if len(rows) == limit else None
        return Response(_page(rows, cursor), headers=headers)


async def _outside_scope(conn: Any, principal: Principal, stream: str) -> bool:
    """True when any event of `stream` lies outside the caller's stores (store-less events
    count as outside unless the scope is every store), whatever page was asked for."""
    if principal.all_stores:
        return False
    return await history.has_events_outside(conn, stream, list(principal.stores))
