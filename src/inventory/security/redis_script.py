"""One Lua script's calls over a Redis connection of their own, one call at a time.

Every HTTP request's rate-limit decision is one script call, so its client cost is paid
per request: through redis-py's client (`Script.__call__`, the pool's acquire and release,
its per-command observability) a call cost about 105 µs of CPU on this machine, against
about 50 µs sent and read on a connection held here (bench/README.md, "auth.py"). The
connection comes from the client's pool, so the URL's address, credentials, TLS and
Sentinel's master discovery (a moved master's READONLY reply is a ConnectionError) are
redis-py's as before; calls wait their turn on a lock, which is also what lets the
callers batch (security/ratelimit.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError


class ScriptChannel:
    """Calls of one script (EVALSHA, EVAL when the server lacks it) on one connection."""

    def __init__(self, client: aioredis.Redis, script: str) -> None:
        self._pool = client.connection_pool
        self._script = script
        self._sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self._connection: AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        """The script's reply; redis.RedisError (ConnectionError when unreachable)."""
        async with self._lock:
            if self._connection is None:
                self._connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            connection = self._connection
            try:
                return await self._call(connection, keys, args)
            except redis.ConnectionError:
                # A connection the server (or a failover) closed while it sat idle: one
                # new one, as redis-py's own retry would. (Not after a timeout: the call
                # may have counted, and a second try would count it twice.)
                await connection.disconnect()
                return await self._call(connection, keys, args)

    async def _call(
        self, connection: AbstractConnection, keys: Sequence[str], args: Sequence[int | str]
    ) -> Any:
        try:
            try:
                return await self._send(connection, "EVALSHA", self._sha, keys, args)
            except NoScriptError:  # a restarted or new server: EVAL caches the script
                return await self._send(connection, "EVAL", self._script, keys, args)
        except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError):
            raise
        except BaseException:
            # Cancelled (or worse) between the command and its reply: the reply would be
            # read as the next call's, so the connection goes.
            await connection.disconnect(nowait=True)
            raise

    @staticmethod
    async def _send(
        connection: AbstractConnection,
        command: str,
        script: str,
        keys: Sequence[str],
        args: Sequence[int | str],
    ) -> Any:
        packed = connection.pack_command(command, script, len(keys), *keys, *args)
        await connection.send_packed_command(packed, check_health=False)
        return await connection.read_response()
