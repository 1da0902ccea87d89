"""Product search with the levels of the stores in scope, over `products` and `stock_levels`
(projections/0008_catalog.sql, 0025_catalog_search_knn.sql, 0006_stock_levels.sql).

`search` returns the rows as tuples: each hit's columns, then its level in LEVEL_COLUMNS
order (null for a hit without any level), grouped into hits by the API as it makes the
wire Structs (quantities shown per the product's decimals).
"""

from __future__ import annotations

from inventory.readmodels.rows import Conn, Row, fetch, like_prefix
from inventory.readmodels.stock_levels.queries import LEVEL_COLUMNS

# Products whose `search` contains the lowered `q` or whose barcode is `q`: the exact
# SKU first, then by similarity, then by SKU. The final ORDER BY ranks a superset of
# the answer: the exact SKU, the exact barcodes, and the nearest `limit` LIKE matches
# by trigram distance (`<->` is 1 - similarity, so nearest is most similar) with every
# row tied with the last, so ties on similarity still break by SKU. The distance names
# `search || ''` to use the GiST index of projections/0025 (a nearest-neighbour scan:
# a word every product contains no longer scores every row), while selective words keep
# the GIN index for the LIKE and sort their few matches.
SEARCH = """
SELECT sku, name, barcode, unit, decimals, row_number() OVER (
    ORDER BY sku = %(q)s DESC, similarity(search, %(lower)s) DESC, sku) AS rank
FROM (
    SELECT sku, name, barcode, unit, decimals, search FROM products
    WHERE sku = %(q)s AND (search LIKE %(pattern)s OR barcode = %(q)s)
    UNION
    (SELECT sku, name, barcode, unit, decimals, search FROM products
     WHERE search LIKE %(pattern)s
     ORDER BY (search || '') <-> %(lower)s FETCH FIRST %(limit)s ROWS WITH TIES)
    UNION
    SELECT sku, name, barcode, unit, decimals, search FROM products WHERE barcode = %(q)s
) AS found
ORDER BY rank LIMIT %(limit)s
"""
# The hits and their levels in the stores in scope in one statement (one round trip, one
# snapshot): a hit's rows are together, in rank then store order; a hit without any
# level has one row whose level columns are null. The lateral subquery's ORDER BY keeps
# it a per-hit range of stock_levels_sku_store (without it the planner may hash-join a
# sequential scan of every level to the 20 hits).
SEARCH_WITH_LEVELS = f"""
WITH p AS MATERIALIZED ({SEARCH})
SELECT p.sku, p.name, p.barcode, p.unit, p.decimals, {LEVEL_COLUMNS}
FROM p LEFT JOIN LATERAL (
    SELECT * FROM stock_levels
    WHERE sku = p.sku AND (%(stores)s::text[] IS NULL OR store = ANY(%(stores)s))
    ORDER BY store
) AS l ON true
ORDER BY p.rank, l.store
"""


async def search(conn: Conn, q: str, stores: list[str] | None, limit: int) -> list[Row]:
    """Products whose SKU, name or barcode contains `q` (trigram index), best first, each
    with its levels in `stores` (None: every store)."""
    lower = q.lower()
    pattern = "%" + like_prefix(lower)
    params = {"pattern": pattern, "q": q, "lower": lower, "limit": limit, "stores": stores}
    # Never prepared: planned for each word (a generic plan would scan the same
    # index for a word every product contains and for a selective one).
    return await fetch(conn, SEARCH_WITH_LEVELS, params, prepare=False)
