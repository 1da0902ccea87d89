"""`inventory worker`: a Dramatiq worker over the context wiring.build_worker makes."""

from __future__ import annotations

import argparse
from typing import Any

from inventory.cli.common import SERVER_ENV, add_command
from inventory.runtime.settings import Settings


def _run(args: argparse.Namespace) -> int:
    from inventory.wiring import build_worker  # noqa: PLC0415
    from inventory.worker.main import run_worker  # noqa: PLC0415

    with build_worker(Settings.from_env()) as context:
        run_worker(context, threads=args.threads)
    return 0


def add(commands: Any) -> None:
    """Add `inventory worker` to the parser."""
    worker = add_command(
        commands,
        "worker",
        "Run a Dramatiq worker: projectors, expiries, reports.",
        SERVER_ENV,
        _run,
    )
    worker.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
