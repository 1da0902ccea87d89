"""The API killed with SIGKILL while its sales go in batches (group commit, 0102): every
201 a client saw is stored, no sale is half there, and concurrent retries complete each
sale exactly once, answering the stored response where there is one. With many SKUs the
sales of a batch write different streams; with three (a sale's three lines), each sale
is decided on the heads the one before it leaves (0103), so the kill falls in a chain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psycopg
import pytest

from inventory.eventstore.chain_audit import verify_store
from inventory.runtime.settings import Settings
from tests.e2e.test_api_crash import (
    Attempt,
    assert_sold_once,
    crash_under_load,
    server,
    whole_sales,
)

pytestmark = pytest.mark.e2e

SKUS = {"many": 48, "hot": 3}
"""Many streams: the clients' sales seldom share one; three: each sale of three lines
writes all three, so every sale chains on the one before it."""


async def retry_all(
    base_url: str, headers: dict[str, str], store: str, attempts: list[Attempt]
) -> list[httpx.Response]:
    """Every attempt sent again with its key, 32 at a time (so the retries batch too)."""
    gate = asyncio.Semaphore(32)
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:

        async def one(attempt: Attempt) -> httpx.Response:
            async with gate:
                return await http.post(
                    f"/v1/stores/{store}/sales",
                    json=attempt.body,
                    headers={**headers, "Idempotency-Key": attempt.key},
                )

        return await asyncio.gather(*(one(attempt) for attempt in attempts))


@pytest.mark.parametrize("streams", SKUS.keys())
def test_a_killed_api_mid_batch_leaves_whole_sales_and_batched_retries_complete_them_once(
    server_env: dict[str, str], settings: Settings, store_id: str, tmp_path: Path, streams: str
) -> None:
    skus = [f"B{n}.{store_id}" for n in range(SKUS[streams])]
    crash = crash_under_load(
        server_env, settings, store_id, tmp_path, name="batch-crash", skus=skus
    )
    env, headers, attempts = crash.env, crash.headers, crash.attempts
    documents, succeeded = crash.documents, crash.succeeded
    print(f"{len(succeeded)} answered, {len(documents)} stored at the kill")  # noqa: T201

    second = server(env, tmp_path / "api-2.log")
    try:
        retries = asyncio.run(retry_all(second.base_url, headers, store_id, attempts))
    finally:
        second.stop()

    for attempt, retry in zip(attempts, retries, strict=True):
        assert retry.status_code == 201, retry.text
        if attempt.status == 201 or attempt.body["sale_id"] in documents:
            assert retry.headers["Idempotent-Replayed"] == "true"
        if attempt.status == 201:
            assert retry.content == attempt.response
    documents = whole_sales(settings, store_id)
    assert documents.keys() == {attempt.body["sale_id"] for attempt in attempts}
    assert_sold_once(settings, store_id, skus, attempts)
    with psycopg.connect(settings.primary_url) as conn:
        assert verify_store(conn, store_id).ok
