"""Scrubbing credentials out of log lines: query values, headers, and known secret shapes.

Every line passes through `scrub_event` last, whoever logged it (our structlog calls,
uvicorn's "WebSocket /v1/feed?token=..." lines, library warnings, tracebacks). Values
under credential-looking keys are replaced whole; inside strings, credential query
parameters and header lines (`< cookie: ...`), `Bearer` values, `bearer.` subprotocols,
API keys, webhook secrets, JWTs, argon2 hashes and the passwords of URLs
(`postgresql://user:secret@host`) are replaced by `[REDACTED]`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Event-dict keys whose values are secrets (compared lower-case, "-" read as "_").
SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "key",
        "api_key",
        "password",
        "current_password",
        "new_password",
        "secret",
        "jwt_secret",
        "authorization",
        "cookie",
        "set_cookie",
        "sec_websocket_protocol",
    }
)

QUERY_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:access_token|api_key|token|key|password)=)[^&\s\"'#]*"
)
SHAPES = (
    # Header lines, as websockets logs a handshake at DEBUG ("< cookie: ...").
    re.compile(
        r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|sec-websocket-protocol)"
        r"(:[ \t]*)[^\r\n\"']+"
    ),
    re.compile(r"(?i)\b(bearer)(\s+|\.)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"inv_[a-z0-9]{10}_[A-Za-z0-9_-]{20,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=_-]{16,}"),  # webhook signing secrets (Standard Webhooks)
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    re.compile(r"\$argon2(?:id|i|d)\$[^\s\"']+"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"']*)(:)[^\s@/\"']+(?=@)"),  # URL password
)


def scrub_text(text: str) -> str:
    """`text` with every credential query value and secret shape replaced."""
    text = QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    for shape in SHAPES:
        text = shape.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    if match.lastindex:  # "Bearer x" / "bearer.x": keep the scheme, drop the credential
        return f"{match.group(1)}{match.group(2)}{REDACTED}"
    return REDACTED


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in SECRET_KEYS


def scrub_value(value: Any) -> Any:
    """A copy of `value` with secrets replaced, looking into strings, mappings and lists."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes):
        return scrub_text(value.decode("latin-1"))
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(item) for item in value)
    return value


def scrub_event(_logger: object, _method: str, event_dict: Any) -> Any:
    """structlog processor, run just before rendering: the last line of defence."""
    return {
        key: REDACTED if _is_secret_key(key) and value is not None else scrub_value(value)
        for key, value in event_dict.items()
    }
