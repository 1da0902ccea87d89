"""Announcing identity changes from a command-line process (`inventory keys revoke`).

The API's own changes go through `RateLimiter.bump_epoch`; both advance the identity
epoch (security/context.py) and publish on one Redis channel, on which every API process
re-checks its open WebSockets (security/socket_watch.py). Each process also re-checks
them every few seconds, so a message lost with Redis delays a close by that period only.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from inventory.security.ratelimit import epoch_key, identity_channel


def announce_sync(connect: Callable[[], redis.Redis], namespace: str) -> bool:
    """Advance the epoch and tell every API process; False when Redis is unreachable."""
    try:
        with connect() as client:
            pipe = client.pipeline(transaction=False)
            pipe.incr(epoch_key(namespace))
            pipe.publish(identity_channel(namespace), b"changed")
            pipe.execute()
    except redis.RedisError:
        return False
    return True
