"""Identity routes: tokens, the caller, users and API keys (api.md, Identity)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter

from inventory.api.auth import client_ip_of
from inventory.api.errors import ApiError, Problem
from inventory.security import identity
from inventory.security.context import Security
from inventory.security.errors import InvalidCredentials, RateLimited
from inventory.security.identity import Actor
from inventory.security.passwords import MAX_LENGTH, MIN_LENGTH, verify_password_async
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal, Role, check_scope
from inventory.security.records import UserRecord
from inventory.security.tokens import issue_token

USERNAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
StoreList = Annotated[list[str], msgspec.Meta(min_length=1, max_length=1000)]
ApiRequest = Request[Principal, Any, State]


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Credentials for `POST /v1/auth/token`."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LENGTH)]


class TokenResponse(msgspec.Struct):
    """A bearer token and how many seconds it stays valid."""

    access_token: str
    token_type: str
    expires_in: int


class Me(msgspec.Struct):
    """The caller."""

    id: str
    kind: str
    name: str
    role: Role
    stores: list[str]


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    """A user to create."""

    username: Annotated[str, msgspec.Meta(pattern=USERNAME)]
    password: Annotated[str, msgspec.Meta(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
    role: Role
    stores: StoreList


class User(msgspec.Struct):
    """A user (never with a password or its hash)."""

    id: str
    username: str
    role: Role
    stores: list[str]
    created_at: datetime
    disabled: bool = False


class UserList(msgspec.Struct):
    """A page of users."""

    items: list[User]
    next_cursor: str | None


class NewApiKey(msgspec.Struct, forbid_unknown_fields=True):
    """An API key to create."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    role: Role
    stores: StoreList


class ApiKey(msgspec.Struct):
    """An API key as listed: its prefix identifies it, the secret is never shown again."""

    id: str
    name: str
    prefix: str
    role: Role
    stores: list[str]
    created_at: datetime


class ApiKeyList(msgspec.Struct):
    """A page of API keys."""

    items: list[ApiKey]
    next_cursor: str | None


class CreatedApiKey(msgspec.Struct):
    """A new API key; `key` is shown in this response only."""

    id: str
    name: str
    prefix: str
    role: Role
    stores: list[str]
    created_at: datetime
    key: str


def security_of(state: State) -> Security:
    """The process's authenticator and rate limiter."""
    security: Security = state.security
    return security


def actor_of(request: ApiRequest) -> Actor:
    """The caller as the audit events name it."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return Actor.of(request.user, request_id)


def scope_errors(stores: list[str], role: Role) -> None:
    """422 `validation_failed` when `stores` is not a valid scope for `role`."""
    problems = check_scope(stores, role)
    if problems:
        errors = [{"field": "stores", "message": problem} for problem in problems]
        raise ApiError(422, "validation_failed", "; ".join(problems), errors=errors)


def user_view(record: UserRecord) -> User:
    """A user as the API shows it."""
    return User(
        record.id,
        record.username,
        Role(record.role),
        record.stores,
        record.created_at,
        record.disabled,
    )


PROBLEM = ResponseSpec(Problem, description="A problem", media_type="application/problem+json")


class IdentityController(Controller):
    """Tokens, the caller, users and API keys."""

    path = "/v1"
    tags = ("identity",)

    @post(
        "/auth/token",
        status_code=200,
        security=[],
        summary="Exchange a username and password for an access token",
        responses={401: PROBLEM, 429: PROBLEM},
    )
    async def token(
        self, request: ApiRequest, state: State, data: JSONBody[TokenRequest]
    ) -> Response[Any]:
        """At most a few attempts per minute per username and client IP (429 beyond);
        a wrong username and a wrong password are the same 401 `invalid_credentials`."""
        security = security_of(state)
        decision = await security.limiter.check_login(data.username, client_ip_of(request))
        if not decision.allowed:
            raise RateLimited(decision)
        async with state.resources.primary.connection() as conn:
            row = await identity.login_row(conn, data.username)
        # Always one argon2 verification, for known and unknown users alike.
        if not await verify_password_async(row[1] if row else None, data.password):
            raise InvalidCredentials("The username or password is wrong.", decision.headers())
        assert row is not None
        token = issue_token(
            security.jwt_secret, row[0], security.jwt_ttl_seconds, generation=row[2]
        )
        body = TokenResponse(token, "bearer", security.jwt_ttl_seconds)
        return Response(body, headers={**decision.headers(), "Cache-Control": "no-store"})

    @get("/me", summary="The caller", **protect(RouteClass.SELF))
    async def me(self, request: ApiRequest) -> Me:
        """Who the bearer token names: a user or an API key, its role and stores."""
        p = request.user
        return Me(p.id, p.kind, p.name, p.role, list(p.stores))

    @post(
        "/users",
        summary="Create a user",
        **protect(RouteClass.IDENTITY, responses={409: PROBLEM, 422: PROBLEM}),
    )
    async def create_user(self, request: ApiRequest, state: State, data: JSONBody[NewUser]) -> User:
        """201 with the user (no password); 409 `user_exists`; 422 for unknown stores."""
        scope_errors(data.stores, data.role)
        async with state.resources.primary.connection() as conn:
            record = await identity.create_user(
                conn,
                actor_of(request),
                username=data.username,
                password=data.password,
                role=data.role,
                stores=data.stores,
            )
        return user_view(record)

    @get("/users", summary="List users", **protect(RouteClass.IDENTITY))
    async def list_users(
        self,
        state: State,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> UserList:
        """Live users by username; `next_cursor` continues after the last one."""
        async with state.resources.primary.connection() as conn:
            records = await identity.list_users(conn, after=cursor, limit=limit + 1)
        items = [user_view(record) for record in records[:limit]]
        next_cursor = items[-1].username if len(records) > limit else None
        return UserList(items, next_cursor)

    @post(
        "/api-keys",
        summary="Create an API key",
        **protect(RouteClass.IDENTITY, responses={422: PROBLEM}),
    )
    async def create_key(
        self, request: ApiRequest, state: State, data: JSONBody[NewApiKey]
    ) -> CreatedApiKey:
        """201 with the key's secret, shown this once; only its hash is stored."""
        scope_errors(data.stores, data.role)
        async with state.resources.primary.connection() as conn:
            created = await identity.create_key(
                conn, actor_of(request), name=data.name, role=data.role, stores=data.stores
            )
        r = created.record
        return CreatedApiKey(
            r.id, r.name, r.prefix, Role(r.role), r.stores, r.created_at, created.key
        )

    @get("/api-keys", summary="List API keys", **protect(RouteClass.IDENTITY))
    async def list_keys(
        self,
        state: State,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> ApiKeyList:
        """Unrevoked keys (id, name, prefix, role, stores), never their secrets."""
        async with state.resources.primary.connection() as conn:
            records = await identity.list_keys(conn, after=cursor, limit=limit + 1)
        items = [
            ApiKey(r.id, r.name, r.prefix, Role(r.role), r.stores, r.created_at)
            for r in records[:limit]
        ]
        return ApiKeyList(items, items[-1].id if len(records) > limit else None)

    @delete(
        "/api-keys/{key_id:uuid}",
        summary="Revoke an API key",
        **protect(RouteClass.IDENTITY, responses={404: PROBLEM}),
    )
    async def revoke_key(
        self, request: ApiRequest, state: State, key_id: FromPath[uuid.UUID]
    ) -> None:
        """204; the key is refused from the next request on, in every API process."""
        async with state.resources.primary.connection() as conn:
            await identity.revoke_key(conn, actor_of(request), str(key_id))
        await security_of(state).identities_changed()
