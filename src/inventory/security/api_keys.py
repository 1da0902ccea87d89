"""API keys: `inv_<prefix>_<secret>`, shown once, stored as a SHA-256 of the whole key.

A key carries 256 bits of randomness, so a fast hash is enough (a slow password hash
protects low-entropy secrets; it would only slow every request here). The prefix is
stored in clear to find the key's row and to let people recognise a key in listings.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
PREFIX_LENGTH = 10
KEY_SHAPE = re.compile(r"^inv_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: the secret to show once, and what is stored."""

    key: str
    prefix: str
    digest: bytes


def generate_key() -> NewKey:
    """A new random key."""
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    key = f"inv_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, digest=digest(key))


def parse_key(token: str) -> str | None:
    """The prefix of a well-formed key, or None when `token` does not look like one."""
    match = KEY_SHAPE.match(token)
    return match.group(1) if match else None


def digest(key: str) -> bytes:
    """What the database stores for `key`."""
    return hashlib.sha256(key.encode()).digest()


def matches(key: str, stored_digest: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored digest."""
    return hmac.compare_digest(digest(key), stored_digest)
