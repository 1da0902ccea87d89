"""Sessions and user administration: refresh, password change and reset, user changes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from inventory.api.auth import client_ip_of
from inventory.api.errors import ApiError
from inventory.api.identity import (
    PROBLEM,
    StoreList,
    TokenResponse,
    User,
    actor_of,
    security_of,
    user_view,
)
from inventory.security import identity, users
from inventory.security.errors import Forbidden, RateLimited, Unauthorized
from inventory.security.passwords import MAX_LENGTH, MIN_LENGTH, verify_password_async
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal, Role
from inventory.security.tokens import refreshed_token

ApiRequest = Request[Principal, Any, State]
NewPassword = Annotated[str, msgspec.Meta(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/me/password`: the current password and the new one."""

    current_password: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LENGTH)]
    new_password: NewPassword


class PasswordReset(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/users/{id}/password`: the new password an admin sets."""

    new_password: NewPassword


class UserChangesBody(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH /v1/users/{id}`: any of role, stores and disabled (absent: unchanged)."""

    role: Role | None = None
    stores: StoreList | None = None
    disabled: bool | None = None


def _token(request: ApiRequest, state: State, generation: int) -> Response[TokenResponse]:
    """A fresh token of the caller's session, no longer than the session may last."""
    security, session = security_of(state), request.user.session
    assert session is not None
    token, ttl = refreshed_token(
        security.jwt_secret,
        request.user.id,
        generation=generation,
        session_started=session.started_at,
        ttl_seconds=security.jwt_ttl_seconds,
        session_max_seconds=state.resources.settings.session_max_seconds,
    )
    return Response(TokenResponse(token, "bearer", ttl), headers={"Cache-Control": "no-store"})


async def _password_budget(request: ApiRequest, state: State, subject: str) -> dict[str, str]:
    """Password endpoints spend the login budget (per user and client IP), as logins do."""
    decision = await security_of(state).limiter.check_login(subject, client_ip_of(request))
    if not decision.allowed:
        raise RateLimited(decision)
    return decision.headers()


class SessionController(Controller):
    """A user's own session: refresh the token, change the password."""

    path = "/v1"
    tags = ("identity",)

    @post(
        "/auth/refresh",
        status_code=200,
        summary="Exchange a valid token for a fresh one",
        **protect(RouteClass.SELF),
    )
    async def refresh(self, request: ApiRequest, state: State) -> Response[TokenResponse]:
        """Any signed-in user, before the token expires: a new token with a fresh expiry,
        the same shape as `/v1/auth/token`, never past INVENTORY_SESSION_MAX_SECONDS from
        the sign-in. An API key, an expired token, a session at its maximum length, or a
        token refused since (password changed, user disabled or deleted) is 401
        `unauthorized`."""
        principal = request.user
        if principal.session is None:
            raise Unauthorized("Only a user's token can be refreshed; an API key does not expire.")
        async with state.resources.primary.connection() as conn:
            generation = await users.token_generation(conn, principal.id)
        if generation is None:
            raise Unauthorized("The user no longer exists or is disabled.")
        return _token(request, state, generation)

    @post(
        "/me/password",
        status_code=204,
        summary="Change one's own password",
        **protect(RouteClass.SELF, responses={422: PROBLEM}),
    )
    async def change_password(
        self, request: ApiRequest, state: State, data: JSONBody[PasswordChange]
    ) -> Response[None]:
        """Any user (not an API key): 204 once `current_password` is right; the token that
        made the change stays valid, every other token of the user is refused from then on
        and their open feed sockets close with 4401. 422 `invalid_current_password`; a few
        attempts per minute (the login budget), 429 beyond."""
        principal = request.user
        if principal.session is None:
            raise Forbidden("An API key has no password.")
        headers = await _password_budget(request, state, principal.name)
        async with state.resources.primary.connection() as conn:
            stored = await users.password_hash(conn, principal.id)
        if not await verify_password_async(stored, data.current_password):
            error = [{"field": "current_password", "message": "is not the current password"}]
            raise ApiError(
                422, "invalid_current_password", "The current password is wrong.", errors=error
            )
        if data.new_password == data.current_password:
            error = [{"field": "new_password", "message": "must differ from the current one"}]
            raise ApiError(
                422, "validation_failed", "The new password is the old one.", errors=error
            )
        async with state.resources.primary.connection() as conn:
            await users.set_password(
                conn,
                actor_of(request),
                principal.id,
                data.new_password,
                kept=principal.session.token_id,
            )
        await security_of(state).identities_changed()
        return Response(None, status_code=204, headers=headers)


class UserAdminController(Controller):
    """An admin's changes to other users: role, stores, disabled, password resets."""

    path = "/v1/users"
    tags = ("identity",)

    @patch(
        "/{user_id:uuid}",
        summary="Change a user's role, stores or disabled flag",
        **protect(RouteClass.IDENTITY, responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM}),
    )
    async def change_user(
        self,
        request: ApiRequest,
        state: State,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[UserChangesBody],
    ) -> User:
        """Admin only: 200 with the user as it now is. A disabled user cannot sign in and
        its tokens and feed sockets are refused (4401); a narrower scope closes sockets
        watching stores outside it (4403). 404 `user_not_found`, 409 `last_admin` (the
        last enabled admin demoted or disabled), 422 for an empty change or a bad scope."""
        if data.role is None and data.stores is None and data.disabled is None:
            error = [{"field": "body", "message": "name at least one of role, stores, disabled"}]
            raise ApiError(422, "validation_failed", "Nothing to change.", errors=error)
        changes = users.UserChanges(data.role, data.stores, data.disabled)
        async with state.resources.primary.connection() as conn:
            record, changed = await users.update_user(
                conn, actor_of(request), str(user_id), changes
            )
        if changed:
            await security_of(state).identities_changed()
        return user_view(record)

    @post(
        "/{user_id:uuid}/password",
        status_code=204,
        summary="Reset a user's password",
        **protect(RouteClass.IDENTITY, responses={404: PROBLEM, 422: PROBLEM}),
    )
    async def reset_password(
        self,
        request: ApiRequest,
        state: State,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[PasswordReset],
    ) -> Response[None]:
        """Admin only: 204; every token the user holds is refused from then on and their
        feed sockets close (4401). At most a few resets of one user per minute (429)."""
        headers = await _password_budget(request, state, f"reset:{user_id}")
        async with state.resources.primary.connection() as conn:
            await users.set_password(
                conn, actor_of(request), str(user_id), data.new_password, kept=None
            )
        await security_of(state).identities_changed()
        return Response(None, status_code=204, headers=headers)

    @delete(
        "/{user_id:uuid}",
        summary="Delete a user",
        **protect(RouteClass.IDENTITY, responses={404: PROBLEM, 409: PROBLEM}),
    )
    async def delete_user(
        self, request: ApiRequest, state: State, user_id: FromPath[uuid.UUID]
    ) -> None:
        """Admin only: 204; the user's tokens are refused from the next request on and their
        feed sockets close (4401), in every process. 404 `user_not_found`, 409 `last_admin`."""
        async with state.resources.primary.connection() as conn:
            await identity.delete_user(conn, actor_of(request), str(user_id))
        await security_of(state).identities_changed()
