"""What one API process needs to authenticate and rate-limit: built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from inventory.runtime.resources import Resources
from inventory.security.authentication import Authenticator
from inventory.security.ratelimit import RateLimiter


@dataclass(frozen=True)
class Security:
    """The authenticator and the rate limiter, shared by every request of a process."""

    authenticator: Authenticator
    limiter: RateLimiter
    jwt_secret: str
    jwt_ttl_seconds: int

    @classmethod
    def of(cls, resources: Resources, jwt_secret: str) -> Security:
        """Build from the process's resources (the primary pool and the Redis client)."""
        settings = resources.settings
        return cls(
            authenticator=Authenticator(resources.primary, jwt_secret, settings.trusted_proxies),
            limiter=RateLimiter(resources.redis, settings.redis_namespace, settings.budgets),
            jwt_secret=jwt_secret,
            jwt_ttl_seconds=settings.jwt_ttl_seconds,
        )
