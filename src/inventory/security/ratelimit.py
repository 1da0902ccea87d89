"""Rate limits in Redis: one Lua script per decision, so every API process shares a budget.

A fixed window per key: the first call creates a counter that expires after the window;
each call increments it and is admitted while the count is within the limit. INCR and
PEXPIRE run in one script, so concurrent processes can never admit more than the limit
(a read-then-write would let two processes see the same count).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import redis
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter

from inventory.security.principal import Principal
from inventory.security.redis_script import ScriptChannel

log = structlog.get_logger(__name__)

REDIS_FAILURES = Counter(
    "inventory_rate_limit_redis_failures",
    "Rate-limit decisions taken without Redis (it was unreachable): the call was allowed "
    "(INVENTORY_RATE_LIMIT_WITHOUT_REDIS=open) or refused (closed).",
    ["policy"],
)

# KEYS[1]: the identity epoch (see security/context.py); KEYS[2..]: budget counters, with
# their windows in ARGV. Calls that arrive while the previous script call is in flight
# share the next one (one round trip); inside it each counter is incremented and read atomically, as
# if alone, so the decisions are exactly those of one script per call.
HIT = """
local out = {tonumber(redis.call('GET', KEYS[1]) or '0')}
for i = 2, #KEYS do
    local count = redis.call('INCR', KEYS[i])
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
        redis.call('PEXPIRE', KEYS[i], ARGV[i - 1])
        ttl = tonumber(ARGV[i - 1])
    end
    out[#out + 1] = count
    out[#out + 1] = ttl
end
return out
"""
MAX_BATCH = 256

# Gives one call back to a counter that is still running (never below zero, never
# creating one): a replay answered from the idempotency record is free.
REFUND = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
    return redis.call('DECR', KEYS[1])
end
return 0
"""

# After a failed Redis call, decide without it for this long instead of waiting for a
# connect timeout on every request.
BACKOFF_SECONDS = 1.0


class Budget(msgspec.Struct, frozen=True):
    """A rate-limit budget: at most `limit` calls per `window_seconds`."""

    limit: int
    window_seconds: int


# Per role for authenticated calls; `anonymous` per client IP; `login` per username and
# IP on /v1/auth/token; `ws_handshake` per principal; `ws_message` per feed connection.
DEFAULT_BUDGETS: dict[str, Budget] = {
    "admin": Budget(600, 60),
    "manager": Budget(600, 60),
    "clerk": Budget(1200, 60),
    "auditor": Budget(300, 60),
    "viewer": Budget(300, 60),
    "anonymous": Budget(60, 60),
    "login": Budget(5, 60),
    "ws_handshake": Budget(10, 60),
    "ws_message": Budget(20, 10),
}


def epoch_key(namespace: str) -> str:
    """The Redis key of the identity epoch (security/context.py explains it)."""
    return f"{namespace}:identity:epoch"


def identity_channel(namespace: str) -> str:
    """The Redis channel that tells API processes to re-check their open WebSockets."""
    return f"{namespace}:identity:changed"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one call against one budget, and the headers that describe it."""

    policy: str
    allowed: bool
    limit: int
    window_seconds: int
    remaining: int
    reset_seconds: int
    degraded: bool = False  # Redis was unreachable: decided by policy, not counted
    epoch: int | None = None  # the identity epoch read with the decision (None: degraded)

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit` (IETF draft), plus `Retry-After` when refused."""
        headers = {"RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window_seconds}'}
        if not self.degraded:
            headers["RateLimit"] = f'"{self.policy}";r={self.remaining};t={self.reset_seconds}'
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` as an ASGI message carries them (lower-case names, bytes)."""
        return [(name.lower().encode(), value.encode()) for name, value in self.headers().items()]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class RateLimiter:
    """Budgets by name (see Settings.budgets), counted in Redis under `namespace`."""

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        budgets: Mapping[str, Budget],
        *,
        fail_open: bool = True,
    ) -> None:
        self._redis = client
        # Without Redis nothing can be counted: admit every call (open: a till keeps
        # selling while Redis fails over) or refuse every call with 429 (closed).
        self._fail_open = fail_open
        self._namespace = namespace
        self._budgets = dict(budgets)
        self._script = ScriptChannel(client, HIT)  # every request's: on its own connection
        self._refund = client.register_script(REFUND)
        self._skip_until = 0.0
        self.epoch_key = epoch_key(namespace)
        self._pending: list[tuple[str, int, asyncio.Future[tuple[int, int, int]]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def _count(self, key: str, window_ms: int) -> tuple[int, int, int]:
        """(count, ttl in ms, identity epoch) after one increment of `key`, batched."""
        future: asyncio.Future[tuple[int, int, int]] = asyncio.get_running_loop().create_future()
        self._pending.append((key, window_ms, future))
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send_all())
        return await future

    async def _send_all(self) -> None:
        """One script call after another until none is pending: the calls that arrive
        while one is in flight make the next batch (one call per round trip, however many
        requests; the script runs on one connection, security/redis_script.py)."""
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._run(batch)
        finally:
            self._sender = None

    async def _run(
        self, batch: list[tuple[str, int, asyncio.Future[tuple[int, int, int]]]]
    ) -> None:
        try:
            result = await self._script(
                [self.epoch_key, *(key for key, _, _ in batch)], [window for _, window, _ in batch]
            )
        except Exception as error:  # noqa: BLE001 - handed to every waiting caller
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        epoch = int(result[0])
        for index, (_, _, future) in enumerate(batch):
            if not future.done():
                future.set_result((int(result[1 + 2 * index]), int(result[2 + 2 * index]), epoch))

    def _failed(self, what: str, error: Exception) -> None:
        self._skip_until = time.monotonic() + BACKOFF_SECONDS
        REDIS_FAILURES.labels(policy=what).inc()
        outcome = "not enforced" if self._fail_open else "refusing every call"
        log.warning(f"rate limit {outcome}: Redis unavailable", policy=what, error=str(error))

    async def epoch(self) -> int | None:
        """The identity epoch, or None when Redis is unreachable."""
        try:
            if time.monotonic() < self._skip_until:
                return None
            value = await self._redis.get(self.epoch_key)
        except redis.RedisError as error:
            self._failed("epoch", error)
            return None
        return int(value or 0)

    async def bump_epoch(self) -> bool:
        """Advance the identity epoch after a revocation or deletion, and announce it to
        every process's open sockets (security/changes.py); False when Redis is down."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(self.epoch_key)
                pipe.publish(identity_channel(self._namespace), b"changed")
                await pipe.execute()
        except redis.RedisError as error:
            log.warning("identity epoch not advanced: Redis unavailable", error=str(error))
            return False
        return True

    def budget(self, policy: str) -> Budget:
        """The budget called `policy`."""
        return self._budgets[policy]

    async def hit(self, policy: str, subject: str, *, budget: str | None = None) -> Decision:
        """Count one call of `subject` against `policy` and decide; when Redis is down,
        allowed (fail open) or refused for a second (fail closed)."""
        rule = self._budgets[budget or policy]
        window_ms = rule.window_seconds * 1000
        key = f"{self._namespace}:ratelimit:{policy}:{subject}"
        if time.monotonic() < self._skip_until:
            # Within the back-off: decide without asking, and without pushing the next
            # try further out (steady traffic would otherwise never try Redis again).
            REDIS_FAILURES.labels(policy=policy).inc()
            return self._without_redis(policy, rule)
        try:
            count, ttl_ms, epoch = await self._count(key, window_ms)
        except redis.RedisError as error:
            self._failed(policy, error)
            return self._without_redis(policy, rule)
        return Decision(
            policy=policy,
            allowed=count <= rule.limit,
            limit=rule.limit,
            window_seconds=rule.window_seconds,
            remaining=max(0, rule.limit - count),
            reset_seconds=max(1, math.ceil(ttl_ms / 1000)),
            epoch=epoch,
        )

    def _without_redis(self, policy: str, rule: Budget) -> Decision:
        """The decision while Redis is away: every call admitted (open) or refused (closed)."""
        allowed = self._fail_open
        remaining = rule.limit if allowed else 0
        reset = 0 if allowed else math.ceil(BACKOFF_SECONDS)
        window = rule.window_seconds
        return Decision(policy, allowed, rule.limit, window, remaining, reset, degraded=True)

    async def check_request(self, principal: Principal | None, ip: str) -> Decision:
        """An HTTP call: per principal under its role's budget, or per client IP if anonymous."""
        if principal is None:
            return await self.hit("anonymous", ip)
        return await self.hit(principal.role.value, f"{principal.kind}:{principal.id}")

    async def refund_request(self, principal: Principal) -> None:
        """Give back the call `check_request` counted for `principal` (a replay)."""
        key = f"{self._namespace}:ratelimit:{principal.role.value}:{principal.kind}:{principal.id}"
        try:
            if time.monotonic() >= self._skip_until:
                await self._refund(keys=[key])
        except redis.RedisError as error:
            self._failed("refund", error)

    async def check_login(self, username: str, ip: str) -> Decision:
        """A login attempt, per username and client IP (hashed: names are not stored)."""
        return await self.hit("login", _digest(username.casefold(), ip))

    async def check_ws_handshake(self, principal: Principal) -> Decision:
        """A WebSocket handshake, per principal."""
        return await self.hit("ws_handshake", f"{principal.kind}:{principal.id}")

    async def check_ws_message(self, connection_id: str) -> Decision:
        """One inbound WebSocket message, per connection (close with 4429 when refused)."""
        return await self.hit("ws_message", connection_id)
