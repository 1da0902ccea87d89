"""What one API process needs to authenticate and rate-limit: built once in the lifespan.

Resolving a token costs a primary round trip; the rate-limit decision costs a Redis one.
To pay only the second on most requests, resolved principals are cached per process
together with the *identity epoch*, a Redis counter that every revocation and deletion
advances after its commit. The rate-limit script returns the epoch in the same round
trip; a cached principal is used only while the epoch it was resolved under is still the
current one. The epoch is read *before* the primary lookup that fills the cache, so a
revocation committed during that lookup leaves the entry already stale. The change is
also pushed: the announcement published with each advance empties every process's cache
(security/socket_watch.py listens), and CACHE_SECONDS bounds an entry's life whatever
Redis does. Without Redis nothing is cached: every request goes to the primary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from inventory.security import replays
from inventory.security.authentication import Authenticator, Headers, bearer_token
from inventory.security.errors import RateLimited, Unauthorized
from inventory.security.principal import Principal
from inventory.security.ratelimit import Budget, Decision, RateLimiter

CACHE_SECONDS = 10.0  # bounds staleness if an epoch increment was lost (Redis down then)
CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    epoch: int
    until: float


@dataclass
class PrincipalCache:
    """Principals by token digest, each with the identity epoch it was resolved under."""

    entries: dict[bytes, _Cached] = field(default_factory=dict)

    @staticmethod
    def key(token: str) -> bytes:
        """The cache key of a token (its digest: tokens are not kept in memory as keys)."""
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> _Cached | None:
        """The live entry for `key`, or None."""
        entry = self.entries.get(key)
        if entry is None or entry.until < time.monotonic():
            self.entries.pop(key, None)
            return None
        return entry

    def put(self, key: bytes, principal: Principal, epoch: int, expires_at: float | None) -> None:
        """Remember a principal resolved under `epoch`, never past its token's expiry."""
        if len(self.entries) >= CACHE_SIZE:
            self.entries.clear()
        lifetime = CACHE_SECONDS
        if expires_at is not None:
            lifetime = min(lifetime, expires_at - time.time())
        self.entries[key] = _Cached(principal, epoch, time.monotonic() + lifetime)


@dataclass(frozen=True)
class Security:
    """The authenticator and the rate limiter, shared by every request of a process."""

    authenticator: Authenticator
    limiter: RateLimiter
    jwt_secret: str
    jwt_ttl_seconds: int
    cache: PrincipalCache = field(default_factory=PrincipalCache)
    # Lookups in progress by token digest; each ends with its entry (or None on failure).
    flights: dict[bytes, asyncio.Future[_Cached | None]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        primary: AsyncConnectionPool,
        redis: aioredis.Redis,
        jwt_secret: str,
        *,
        namespace: str,
        budgets: Mapping[str, Budget],
        trusted_proxies: Sequence[str],
        jwt_ttl_seconds: int,
        fail_open: bool = True,
    ) -> Security:
        """Build from the process's primary pool and Redis client (wiring.py)."""
        return cls(
            authenticator=Authenticator(primary, jwt_secret, trusted_proxies),
            limiter=RateLimiter(redis, namespace, budgets, fail_open=fail_open),
            jwt_secret=jwt_secret,
            jwt_ttl_seconds=jwt_ttl_seconds,
        )

    async def identify(self, headers: Headers, ip: str) -> tuple[Principal | None, Decision]:
        """The caller and the rate-limit decision for this call; Unauthorized for bad
        credentials (which spend the IP's anonymous budget), RateLimited when over budget."""
        try:
            token = bearer_token(headers)
        except Unauthorized as refused:
            await self._charge_anonymous(refused, ip)
            raise
        if token is None:
            return None, self._admit(await self.limiter.check_request(None, ip))
        key = self.cache.key(token)
        cached = self.cache.get(key)
        if cached is None:
            flight = self.flights.get(key)
            if flight is None:
                return await self._first(key, token, ip)
            # Another call is resolving the same token: share its lookup, not its verdict.
            cached = await asyncio.shield(flight)
            if cached is None:
                return await self._first(key, token, ip)
        principal = cached.principal
        if principal.ip != ip:  # the same key from another address
            principal = dataclasses.replace(principal, ip=ip)
        decision = await self.limiter.check_request(principal, ip)
        # The decision read the current epoch: an entry (or a shared lookup, which may have
        # started before this call arrived) resolved under an older one may be stale.
        if decision.epoch == cached.epoch:
            return principal, self._admit(decision, principal)
        self.cache.entries.pop(key, None)
        principal = await self._lookup(key, token, ip, decision.epoch)
        return principal, self._admit(decision, principal)  # already counted

    async def _first(self, key: bytes, token: str, ip: str) -> tuple[Principal, Decision]:
        """A miss: the epoch, then the primary's lookup, which calls arriving meanwhile with
        the same token share (a cache entry's expiry under load costs one lookup, not one
        per call in flight); then this call's own rate-limit decision."""
        flight: asyncio.Future[_Cached | None] = asyncio.get_running_loop().create_future()
        owner = self.flights.setdefault(key, flight) is flight
        try:
            epoch = await self.limiter.epoch()
            principal = await self._lookup(key, token, ip, epoch)
            if epoch is not None:  # without Redis, every call looks its token up itself
                flight.set_result(_Cached(principal, epoch, 0.0))
        finally:
            if not flight.done():
                flight.set_result(None)
            if owner:
                del self.flights[key]
        return principal, self._admit(await self.limiter.check_request(principal, ip), principal)

    async def _lookup(self, key: bytes, token: str, ip: str, epoch: int | None) -> Principal:
        """The token's principal from the primary, cached under `epoch` (read before)."""
        try:
            principal, expires_at = await self.authenticator.authenticate_until(token, ip)
        except Unauthorized as refused:
            await self._charge_anonymous(refused, ip)
            raise
        if epoch is not None:
            self.cache.put(key, principal, epoch, expires_at)
        return principal

    async def _charge_anonymous(self, refused: Unauthorized, ip: str) -> None:
        """Bad credentials spend the IP's anonymous budget (guessing is throttled)."""
        refused.headers = self._admit(await self.limiter.check_request(None, ip)).headers()

    @staticmethod
    def _admit(decision: Decision, principal: Principal | None = None) -> Decision:
        if not decision.allowed:
            raise RateLimited(decision, principal)
        return decision

    async def replay_waits(self, principal: Principal, key: str) -> bool:
        """True when a response is stored under `key` for `principal`: the call will be
        answered from the idempotency record, which spends no rate budget (a till's retry
        storm must not lock it out). One primary lookup, made only once over budget."""
        return await replays.stored(self.authenticator.pool, principal.id, key)

    async def replayed(self, principal: Principal) -> None:
        """A call answered from the idempotency record gives back what it spent."""
        await self.limiter.refund_request(principal)

    async def identities_changed(self) -> None:
        """After a revocation or deletion commits: every process drops its cached principals
        and re-checks its open WebSockets (security/socket_watch.py)."""
        self.cache.entries.clear()
        await self.limiter.bump_epoch()
