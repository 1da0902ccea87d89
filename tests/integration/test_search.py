"""Product search (`GET /v1/search`'s query) against the straightforward ranking of every
match: same products in the same order, whichever index the planner picks."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from inventory.readmodels.rows import like_prefix
from inventory.readmodels.search import SEARCH, SEARCH_WITH_LEVELS
from inventory.runtime.migrations import sql_directory

# The ranking as the search defined it before the nearest-neighbour scan: every match
# scored, the exact SKU first, then by similarity, then by SKU.
EVERY_MATCH_RANKED = """
SELECT sku, name, barcode, unit, decimals FROM products
WHERE search LIKE %(pattern)s OR barcode = %(q)s
ORDER BY sku = %(q)s DESC, similarity(search, %(lower)s) DESC, sku LIMIT %(limit)s
"""
# Planner settings that steer the search to each of its plans on a small table.
PLANS = {
    "as planned": "",
    "index scans only": "SET enable_seqscan = off; SET enable_bitmapscan = off;"
    " SET enable_sort = off",
    "bitmap scans only": "SET enable_seqscan = off; SET enable_indexscan = off",
    "sequential scans only": "SET enable_indexscan = off; SET enable_bitmapscan = off",
}
WORDS = [
    "widget",
    "Widget",
    "blue",
    "blue widget",
    "W-0007",
    "w-0007",
    "W-00",
    "4000000012",
    "00001",
    "4000",
    "Gadget",
    "%",
    "_",
    "a_b",
    "\\",
    "zzz",
    "Big Red",
    "İ-77",
]
LIMITS = [1, 3, 20, 1000]
LEVELS_IN_SCOPE = """
SELECT store FROM stock_levels
WHERE sku = %(sku)s AND (%(stores)s::text[] IS NULL OR store = ANY(%(stores)s)) ORDER BY store
"""


@pytest.fixture
def catalog(scratch_database: str) -> Iterator[psycopg.Connection]:
    """The catalog's schema with 2,000 products: most named alike (ties in similarity),
    some with a barcode or name that is another product's SKU."""
    folder = sql_directory("projections")
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        for name in ("0006_stock_levels.sql", "0008_catalog.sql", "0025_catalog_search_knn.sql"):
            conn.execute((folder / name).read_text().encode())
        rows = [
            (f"W-{i:04d}", f"{'Blue ' if i % 2 else ''}Widget {i % 7}", f"40000{i:05d}")
            for i in range(2000)
        ]
        rows += [
            ("G-1", "Gadget W-0007", "W-0007"),
            ("G-2", "Big Red Gadget", None),
            ("G-3", "a_b %\\ gadget", "4000000012"),
            ("W-0007X", "Widget", "x"),
            # Python lowers İ to two characters, PostgreSQL to one: found by barcode.
            ("G-4", "Gadget four", "İ-77"),
        ]
        with conn.cursor().copy(
            "COPY products (sku, name, barcode, unit, decimals, discontinued, version,"
            " last_seq, state) FROM STDIN"
        ) as copy:
            for sku, name, barcode in rows:
                copy.write_row((sku, name, barcode, "each", 0, False, 1, 1, "{}"))
        levels = [
            (store, sku)
            for sku, _, _ in rows[::3]
            for store in ("s2", "s1", "s3")
            if store != "s3" or sku.endswith("5")
        ]
        with conn.cursor().copy(
            "COPY stock_levels (store, sku, on_hand, reserved, available, in_transit_in,"
            " in_transit_out, version, last_seq, updated_at, state) FROM STDIN"
        ) as copy:
            for store, sku in levels:
                copy.write_row((store, sku, 5, 0, 5, 0, 0, 1, 1, "2026-01-01T00:00:00Z", "{}"))
        conn.execute("ANALYZE products")
        conn.execute("ANALYZE stock_levels")
        yield conn


def search(
    conn: psycopg.Connection, query: str, q: str, limit: int, stores: list[str] | None = None
) -> list[tuple[object, ...]]:
    params = {
        "q": q,
        "lower": q.lower(),
        "pattern": "%" + like_prefix(q.lower()),
        "limit": limit,
        "stores": stores,
    }
    return conn.execute(query, params).fetchall()


def test_the_search_ranks_like_scoring_every_match(catalog: psycopg.Connection) -> None:
    for plan, settings in PLANS.items():
        catalog.execute("RESET ALL")
        if settings:
            catalog.execute(settings)
        for q in WORDS:
            for limit in LIMITS:
                expected = search(catalog, EVERY_MATCH_RANKED, q, limit)
                found = search(catalog, SEARCH, q, limit)
                assert [row[:5] for row in found] == expected, (plan, q, limit)
                assert [row[5] for row in found] == list(range(1, len(found) + 1))


def test_a_word_every_product_holds_is_a_nearest_neighbour_scan(
    catalog: psycopg.Connection,
) -> None:
    params = {"q": "widget", "lower": "widget", "pattern": "%widget%", "limit": 20}
    plan = catalog.execute(b"EXPLAIN " + SEARCH.encode(), params).fetchall()

    assert any("products_search_knn" in line for (line,) in plan), plan


def test_each_hit_comes_once_with_its_levels_in_scope_by_store(
    catalog: psycopg.Connection,
) -> None:
    for stores in (None, ["s1"], ["s3", "s2"], []):
        for q in ("widget", "W-0007", "W-00", "4000000012", "zzz"):
            expected = []
            for sku, *_ in search(catalog, EVERY_MATCH_RANKED, q, 20):
                found = catalog.execute(LEVELS_IN_SCOPE, {"sku": sku, "stores": stores})
                expected += [(sku, store) for (store,) in found] or [(sku, None)]

            rows = search(catalog, SEARCH_WITH_LEVELS, q, 20, stores)

            assert [(row[0], row[5]) for row in rows] == expected, (stores, q)
