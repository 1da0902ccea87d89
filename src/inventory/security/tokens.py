"""Access tokens: short-lived HS256 JWTs naming a user; the user is re-read per request."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from inventory.security.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "inventory"


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or not ours."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: whose it is and until when."""

    subject: str
    expires_at: int
    token_id: str
    generation: int = 0  # the user's token generation at issue (0: issued before 0070)
    session_started: int = 0  # when its session signed in (`auth_time`; else its `iat`)


def issue_token(
    secret: str,
    subject: str,
    ttl_seconds: int,
    *,
    now: float | None = None,
    generation: int = 0,
    session_started: int | None = None,
) -> str:
    """A signed token for `subject` (a user id) valid for `ttl_seconds`, issued under the
    user's token `generation` (a password change or a disable advances it), in the session
    that signed in at `session_started` (a login: now)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "gen": generation,
        "auth_time": issued if session_started is None else session_started,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def refreshed_token(
    secret: str,
    subject: str,
    *,
    generation: int,
    session_started: int,
    ttl_seconds: int,
    session_max_seconds: int,
    now: float | None = None,
) -> tuple[str, int]:
    """A fresh token of the same session and its lifetime, which never outlasts the
    session's `session_max_seconds` from its sign-in; Unauthorized once that has passed."""
    issued = int(time.time() if now is None else now)
    left = session_started + session_max_seconds - issued
    if left <= 0:
        raise Unauthorized("The session has reached its maximum length; sign in again.")
    ttl = min(ttl_seconds, left)
    token = issue_token(
        secret, subject, ttl, now=issued, generation=generation, session_started=session_started
    )
    return token, ttl


def verify_token(secret: str, token: str, *, now: float | None = None) -> TokenClaims:
    """The claims of a valid token, or InvalidToken; only HS256 is accepted ("none" is not)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "jti"], "verify_exp": now is None},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(type(error).__name__) from None
    expires_at = claims["exp"]
    if now is not None and not (isinstance(expires_at, int) and expires_at > now):
        raise InvalidToken("ExpiredSignatureError")
    subject = claims["sub"]
    if not isinstance(subject, str):
        raise InvalidToken("InvalidSubjectError")
    generation, started = claims.get("gen", 0), claims.get("auth_time", claims["iat"])
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (generation, started)):
        raise InvalidToken("InvalidGenerationError")
    return TokenClaims(
        subject=subject,
        expires_at=int(expires_at),
        token_id=str(claims["jti"]),
        generation=generation,
        session_started=started,
    )


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts: worth trying as a JWT rather than as an API key."""
    return token.count(".") == 2
