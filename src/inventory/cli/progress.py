"""The progress bar of long commands (rebuild, export, audit, demo load)."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """A one-line progress bar on a terminal, periodic lines elsewhere."""

    def __init__(self, total: int, out: TextIO, *, unit: str = "events") -> None:
        self.total, self.done, self.out, self.unit = max(total, 1), 0, out, unit
        self.started = self.last = time.monotonic()

    def __call__(self, count: int) -> None:
        """Record `count` more events applied."""
        self.done += count
        now = time.monotonic()
        if now - self.last < 0.2 and self.done < self.total:
            return
        self.last = now
        share = min(self.done / self.total, 1.0)
        rate = self.done / max(now - self.started, 1e-9)
        bar = "#" * int(share * 30)
        line = f"[{bar:<30}] {share:6.1%} {self.done}/{self.total} {self.unit} {rate:,.0f}/s"
        end = "\r" if self.out.isatty() else "\n"
        print(line, end=end, file=self.out, flush=True)
