"""Passwords: argon2id hashes, verified in a thread so the event loop keeps serving."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

# Verified when the username is unknown, so an unknown user costs as much time as a
# wrong password and timing tells nothing about which usernames exist.
_DUMMY_HASH = _hasher.hash("no user has this password")

MIN_LENGTH = 8
MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string) of `password`."""
    return _hasher.hash(password)


async def hash_password_async(password: str) -> str:
    """`hash_password` off the event loop."""
    return await asyncio.to_thread(hash_password, password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; `stored_hash` None (no such user) still costs a verify."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    """`verify_password` off the event loop (argon2 takes tens of milliseconds by design)."""
    return await asyncio.to_thread(verify_password, stored_hash, password)


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must have at most {MAX_LENGTH} characters"
    return None
