"""`GET /v1/audit/verify?store=`: recompute a store's hash chain on the primary (api.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from inventory.api.errors import ApiError, Problem
from inventory.eventstore import checkpoints
from inventory.eventstore.chain_audit import Walk, verify_store_async
from inventory.security.policy import RouteClass, protect


class ChainMismatch(msgspec.Struct, frozen=True, kw_only=True):
    """The first event whose stored chain is not the one recomputed."""

    position: int
    id: str
    stream: str
    version: int
    type: str
    stored_chain: str
    expected_chain: str


class CheckpointResult(msgspec.Struct, frozen=True, kw_only=True):
    """The newest signed checkpoint, checked against the store's events."""

    file: str | None
    taken_at: str | None
    ok: bool
    problems: list[str]


class ChainVerification(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a store's history is the one its chain (and checkpoint) pins."""

    store: str
    verified: bool
    events: int
    head: str
    first_mismatch: ChainMismatch | None
    problems: list[str]
    checkpoint: CheckpointResult | None


StoreParameter = Annotated[
    str,
    Parameter(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.]*$",  # a store id, as POST /v1/stores takes it
        description="The store to verify.",
    ),
]


NOT_FOUND = {404: ResponseSpec(Problem, description="store_not_found")}


class AuditController(Controller):
    """`GET /v1/audit/verify`."""

    path = "/v1/audit"
    tags = ("history",)

    @get(
        "/verify",
        summary="Verify a store's chain",
        **protect(RouteClass.HISTORY, store="store", responses=NOT_FOUND),
    )
    async def verify(self, *, state: State, store: StoreParameter) -> ChainVerification:
        """Recompute every chain link of the store's events on the primary, in chain order,
        and name the first event whose stored chain differs (an edit, deletion or
        reordering); then check the newest signed checkpoint when one is configured."""
        async with state.resources.primary.connection() as conn:
            walk = await verify_store_async(conn, store)
            checkpoint = await _checkpoint(state, conn, store)
        problems = [*walk.problems, *(checkpoint.problems if checkpoint else [])]
        if not walk.events and not problems:
            # No event and no checkpoint naming one: a store never opened, not a history
            # that verifies (a checkpoint would show one deleted whole).
            raise ApiError(404, "store_not_found", f"No store has the id {store!r}.")
        return ChainVerification(
            store=store,
            verified=not problems,
            events=walk.events,
            head=walk.head,
            first_mismatch=_mismatch(walk),
            problems=problems,
            checkpoint=checkpoint,
        )


def _mismatch(walk: Walk) -> ChainMismatch | None:
    found = walk.first_break
    if found is None:
        return None
    return ChainMismatch(
        position=found.position,
        id=found.id,
        stream=found.stream,
        version=found.version,
        type=found.type,
        stored_chain=found.stored,
        expected_chain=found.expected,
    )


async def _checkpoint(state: State, conn: Any, store: str) -> CheckpointResult | None:
    """The newest checkpoint's head of `store`; None when checkpoints are off or none
    has been written yet."""
    settings = state.resources.settings
    if settings.audit_signing_key is None:
        return None
    path = checkpoints.latest(settings.checkpoint_directory)
    if path is None:
        return None
    key = checkpoints.signing_key(settings.audit_signing_key).public_key()
    try:
        taken = checkpoints.load(path, key)
    except checkpoints.CheckpointError as error:
        return CheckpointResult(file=path.name, taken_at=None, ok=False, problems=[str(error)])
    heads = [head for head in taken.heads if head.store == store]
    problems = await checkpoints.compare_async(conn, heads)
    return CheckpointResult(
        file=path.name, taken_at=taken.taken_at, ok=not problems, problems=problems
    )
