"""Rate limits in Redis: one Lua script per decision, so every API process shares a budget.

A fixed window per key: the first call creates a counter that expires after the window;
each call increments it and is admitted while the count is within the limit. INCR and
PEXPIRE run in one script, so concurrent processes can never admit more than the limit
(a read-then-write would let two processes see the same count).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter

from inventory.runtime.settings import Budget
from inventory.security.principal import Principal

log = structlog.get_logger(__name__)

REDIS_FAILURES = Counter(
    "inventory_rate_limit_redis_failures",
    "Rate-limit decisions taken without Redis (it was unreachable): the call was allowed.",
    ["policy"],
)

HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

# After a failed Redis call, decide without it for this long instead of waiting for a
# connect timeout on every request.
BACKOFF_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one call against one budget, and the headers that describe it."""

    policy: str
    allowed: bool
    limit: int
    window_seconds: int
    remaining: int
    reset_seconds: int
    degraded: bool = False  # Redis was unreachable: allowed without counting

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit` (IETF draft), plus `Retry-After` when refused."""
        headers = {"RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window_seconds}'}
        if not self.degraded:
            headers["RateLimit"] = f'"{self.policy}";r={self.remaining};t={self.reset_seconds}'
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class RateLimiter:
    """Budgets by name (see Settings.budgets), counted in Redis under `namespace`."""

    def __init__(
        self, client: aioredis.Redis, namespace: str, budgets: Mapping[str, Budget]
    ) -> None:
        self._redis = client
        self._namespace = namespace
        self._budgets = dict(budgets)
        self._script = client.register_script(HIT)
        self._skip_until = 0.0

    def budget(self, policy: str) -> Budget:
        """The budget called `policy`."""
        return self._budgets[policy]

    async def hit(self, policy: str, subject: str, *, budget: str | None = None) -> Decision:
        """Count one call of `subject` against `policy` and decide; allowed when Redis is down."""
        rule = self._budgets[budget or policy]
        window_ms = rule.window_seconds * 1000
        key = f"{self._namespace}:ratelimit:{policy}:{subject}"
        try:
            if time.monotonic() < self._skip_until:
                raise redis.ConnectionError("Redis was unreachable a moment ago")
            count, ttl_ms = await self._script(keys=[key], args=[window_ms])
        except redis.RedisError as error:
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            REDIS_FAILURES.labels(policy=policy).inc()
            log.warning(
                "rate limit not enforced: Redis unavailable", policy=policy, error=str(error)
            )
            return Decision(policy, True, rule.limit, rule.window_seconds, rule.limit, 0, True)
        count, ttl_ms = int(count), int(ttl_ms)
        return Decision(
            policy=policy,
            allowed=count <= rule.limit,
            limit=rule.limit,
            window_seconds=rule.window_seconds,
            remaining=max(0, rule.limit - count),
            reset_seconds=max(1, math.ceil(ttl_ms / 1000)),
        )

    async def check_request(self, principal: Principal | None, ip: str) -> Decision:
        """An HTTP call: per principal under its role's budget, or per client IP if anonymous."""
        if principal is None:
            return await self.hit("anonymous", ip)
        return await self.hit(principal.role.value, f"{principal.kind}:{principal.id}")

    async def check_login(self, username: str, ip: str) -> Decision:
        """A login attempt, per username and client IP (hashed: names are not stored)."""
        return await self.hit("login", _digest(username.casefold(), ip))

    async def check_ws_handshake(self, principal: Principal) -> Decision:
        """A WebSocket handshake, per principal."""
        return await self.hit("ws_handshake", f"{principal.kind}:{principal.id}")

    async def check_ws_message(self, connection_id: str) -> Decision:
        """One inbound WebSocket message, per connection (close with 4429 when refused)."""
        return await self.hit("ws_message", connection_id)
