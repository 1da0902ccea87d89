"""The worker's one context: its pools, Redis client and the state its actors share.

wiring.build_worker creates it at start-up and installs it once; every actor reads it
with `current()` and hands it down, so nothing else in the worker keeps process state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from inventory.runtime.resources import writer_checks, writer_options
from inventory.runtime.settings import Settings
from inventory.service import CommandService, Decision
from inventory.webhooks.delivery import Deliverer
from inventory.worker.containment import Containment


@dataclass
class Serving:
    """The partitions woken and not yet taken by a round, and whether a thread serves
    them now (worker/actors.py explains the rounds)."""

    woken: set[str] = field(default_factory=set)
    awaited: dict[tuple[str, int], float] = field(default_factory=dict)
    """Wake-ups held until their event is in the replica's copy: (partition, position) to
    the monotonic time after which the wait ends (listener.py)."""
    active: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class CommandServices:
    """A command service on the primary per event loop: the AsyncIO middleware runs async
    actors on its own loop, and a pool belongs to one loop."""

    primary_url: str
    after_commit: Callable[[Sequence[Decision]], None]
    options: dict[str, Any] = field(default_factory=dict)  # psycopg's (runtime.resources)
    services: dict[int, CommandService] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Every connection the worker writes through (these pools, the import's) asks
        # for the read-write server when the URL lists several, as the API's pool does.
        self.options = {**self.options, **writer_options(self.primary_url)}

    async def get(self) -> CommandService:
        """The running loop's service; its pool opens on first use, on that loop."""
        loop = id(asyncio.get_running_loop())
        with self.lock:
            service = self.services.get(loop)
        if service is None:
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                self.primary_url,
                min_size=1,
                max_size=4,
                name="worker-primary",
                kwargs=self.options,
                open=False,
                # Retry a lost primary within seconds of its standby's promotion (resources.py).
                reconnect_timeout=5.0,
                # A connection whose server went read-only is dropped (resources.py).
                **writer_checks(self.primary_url),
            )
            await pool.open()
            service = CommandService(pool, after_commit=self.after_commit)
            with self.lock:
                self.services[loop] = service
        return service


@dataclass
class WorkerContext:
    """What one worker process's actors share, built once by wiring.build_worker."""

    settings: Settings
    broker: RedisBroker
    replica: ConnectionPool  # the replica, for projection rounds, feeds and reports
    redis: redis.Redis  # live-feed messages (thread-safe: a pool inside)
    commands: CommandServices  # the primary, for the commands the worker runs (expiry)
    serving: Serving = field(default_factory=Serving)
    containment: Containment = field(default_factory=Containment)
    webhooks: Deliverer | None = None  # webhook rounds (built by wiring.build_worker)

    def close(self) -> None:
        """Close the replica pool and the Redis client at shutdown."""
        if self.webhooks is not None:
            self.webhooks.primary.close()
        self.replica.close()
        self.redis.close()


class _Holder:
    """The installed context: actors run on Dramatiq's threads and find it here."""

    context: WorkerContext | None = None


def install(context: WorkerContext | None) -> None:
    """Make `context` the one the actors use (None at shutdown)."""
    _Holder.context = context


def current() -> WorkerContext:
    """The installed context; actors used before wiring.build_worker is a bug."""
    context = _Holder.context
    if context is None:
        raise RuntimeError("worker actors used before wiring.build_worker()")
    return context
