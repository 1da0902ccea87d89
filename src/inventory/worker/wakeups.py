"""What follows a commit: wake-ups (one message per store touched) and expiry reminders."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from inventory.service import Decision

log = structlog.get_logger(__name__)


class _Sender:
    """Sends wake-ups from a thread of its own, one message per partition woken since its
    last pass. A wake-up asked for while one for the same partition waits to be sent is
    covered by it: that message leaves after this commit, so the round it starts reads
    it. The caller (an API's event loop, a command's thread) never waits on Redis, and
    under load the workers take fewer messages for the same events."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: set[str] = set()
        self.woken = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, partitions: set[str]) -> None:
        """Have these partitions woken soon."""
        with self.lock:
            self.pending.update(partitions)
            if self.thread is None or not self.thread.is_alive():
                # Daemon: wake-ups left unsent at exit cost latency only (the sweep).
                self.thread = threading.Thread(target=self._run, name="wake-ups", daemon=True)
                self.thread.start()
        self.woken.set()

    def flush(self) -> None:
        """Send what is pending now, from the caller's thread (at exit)."""
        with self.lock:
            taken, self.pending = sorted(self.pending), set()
        for partition in taken:
            _send(partition)

    def _run(self) -> None:
        while True:
            self.woken.wait()
            with self.lock:
                self.woken.clear()
                taken, self.pending = sorted(self.pending), set()
            for partition in taken:
                _send(partition)


_SENDER = _Sender()
# A short-lived process (a CLI command) sends its last wake-ups before it goes.
atexit.register(_SENDER.flush)


def _send(partition: str) -> None:
    from inventory.worker.actors import wake_projectors  # noqa: PLC0415 - needs the broker

    try:
        wake_projectors.send(partition)
    except Exception as error:  # noqa: BLE001 - the commit stands; the sweep catches up
        log.warning(
            "wake-up not sent; the sweep will catch up", partition=partition, error=str(error)
        )


def wake(partitions: Iterable[str | None]) -> None:
    """Ask the workers to project these partitions, without waiting for Redis. A lost
    message costs only latency: the sweep finds what no message announced."""
    found = {p or "" for p in partitions}
    if found:
        _SENDER.add(found)


def after_commit(decisions: Sequence[Decision]) -> None:
    """Everything the command service does once commands have committed: one wake-up per
    store they touched, and the expiry reminders of the reservations they placed."""
    from inventory.worker import reservations  # noqa: PLC0415 - needs the broker

    wake(partition for decision in decisions for partition in decision.partitions)
    for decision in decisions:
        reservations.schedule(decision)
