"""Resolving a bearer token (a JWT or an API key) to a live principal, per request."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs

from psycopg_pool import AsyncConnectionPool

from inventory.security import identity
from inventory.security.client_ip import Network, client_ip, parse_networks
from inventory.security.errors import Unauthorized
from inventory.security.principal import Principal, TokenSession
from inventory.security.tokens import InvalidToken, looks_like_jwt, verify_token

MAX_TOKEN_LENGTH = 4096
Headers = Iterable[tuple[bytes, bytes]]


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer ...` header; Unauthorized for other schemes."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("The Authorization header must read `Bearer <token>`.")
            return token.strip()
    return None


def query_token(query_string: bytes) -> str | None:
    """The `?token=` of a WebSocket URL (browsers cannot set headers on a WebSocket)."""
    values = parse_qs(query_string.decode("latin-1")).get("token")
    return values[0] if values else None


class Authenticator:
    """Checks tokens against the signing secret and the primary's users and keys."""

    def __init__(
        self, pool: AsyncConnectionPool, jwt_secret: str, trusted_proxies: Sequence[str]
    ) -> None:
        self._pool = pool
        self._secret = jwt_secret
        self._proxies: tuple[Network, ...] = parse_networks(",".join(trusted_proxies))

    @property
    def pool(self) -> AsyncConnectionPool:
        """The primary's pool, where users, keys and idempotency records live."""
        return self._pool

    def client_ip(self, peer: str | None, headers: Headers) -> str:
        """The caller's IP (X-Forwarded-For only from trusted proxies)."""
        forwarded = ", ".join(
            value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"
        )
        return client_ip(peer, forwarded or None, self._proxies)

    async def authenticate(self, token: str, ip: str) -> Principal:
        """The live principal `token` names; Unauthorized for anything else."""
        principal, _ = await self.authenticate_until(token, ip)
        return principal

    async def authenticate_until(self, token: str, ip: str) -> tuple[Principal, float | None]:
        """The live principal and, for a JWT, when it expires (epoch seconds)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("The token is not valid.")
        expires_at: float | None = None
        if looks_like_jwt(token):
            try:
                claims = verify_token(self._secret, token)
                subject = str(uuid.UUID(claims.subject))
            except (InvalidToken, ValueError):
                raise Unauthorized("The token is not valid or has expired.") from None
            expires_at = claims.expires_at
            async with self._pool.connection() as conn:
                session = TokenSession(claims.generation, claims.token_id, claims.session_started)
                principal = await identity.user_principal(conn, subject, session, ip)
        else:
            async with self._pool.connection() as conn:
                principal = await identity.key_principal(conn, token, ip)
        if principal is None:
            raise Unauthorized("The token is not valid, or its user or key no longer exists.")
        return principal, expires_at
