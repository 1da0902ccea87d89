"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A reachable `min_position`: a random one makes the query wait its full 5 s and
    answer 503 `read_model_lagging` (documented, and tested in test_stale_reads.py),
    spending the run's time on waiting. Malformed values are sent unchanged."""
    query = case.query
    if query and str(query.get("min_position", "")).isdigit():
        query["min_position"] = 0
