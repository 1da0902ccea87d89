"""Thin Dramatiq actors."""

from __future__ import annotations

import threading

from inventory.runtime.settings import Settings


def start_background(settings: Settings, stop: threading.Event) -> None:
    """Start the worker's periodic tasks."""
