"""The audit's chain questions: does every store's chain hold, and does it hold the signed
checkpoint's heads?"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from inventory.eventstore import checkpoints
from inventory.eventstore.chain_audit import chain_stores, verify_store
from inventory.eventstore.verification import Check


def check_chains(
    primary: psycopg.Connection[Any],
    store: str | None,
    progress: Callable[[int], None] | None = None,
) -> Check:
    """Recompute each chain (one store's, or every one) and name each chain's first break."""
    check = Check("chains", what="events")
    for name in [store] if store is not None else chain_stores(primary):
        walk = verify_store(primary, name)
        check.checked += walk.events
        if progress is not None:
            progress(walk.events)
        for problem in walk.problems:
            check.problem(f"{name or '(no store)'}: {problem}")
    return check


def check_checkpoint(
    primary: psycopg.Connection[Any], secret: str | None, directory: Path, store: str | None
) -> Check:
    """The newest checkpoint in `directory`: validly signed, and each head it names still
    carried by the event at its position (one store's head only, with `store`)."""
    check = Check("signed", what="checkpointed heads")
    if secret is None:
        check.what = "heads (no INVENTORY_AUDIT_SIGNING_KEY: checkpoints off)"
        return check
    path = checkpoints.latest(directory)
    if path is None:
        check.what = f"heads (no checkpoint in {directory} yet)"
        return check
    try:
        taken = checkpoints.load(path, checkpoints.signing_key(secret).public_key())
    except checkpoints.CheckpointError as error:
        check.problem(str(error))
        return check
    heads = [head for head in taken.heads if store is None or head.store == store]
    check.checked = len(heads)
    check.what = f"checkpointed heads ({path.name})"
    for problem in checkpoints.compare(primary, heads):
        check.problem(problem)
    return check
