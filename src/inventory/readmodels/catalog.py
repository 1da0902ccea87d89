"""`products` and `stores`: the catalog and the stores as their streams' states hold them.

Tables: projections/0008_catalog.sql, 0025_catalog_search_knn.sql. The projector folds
product and store events with `evolve`; the queries below are every read of the two
tables (the API's catalog routes, the stock queries' checks; search is in search.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.rows import tuple_row

from inventory.domain.events import ProductEvent, StoreEvent
from inventory.domain.evolution import evolve
from inventory.domain.state import ProductState, StoreState
from inventory.readmodels.decoding import domain_event
from inventory.readmodels.projection import Builder, Cursor, Projector, ReplicaEvent, shadow

PRODUCT_COLUMNS = (
    "sku, name, description, barcode, unit, decimals, category, discontinued, version,"
    " last_seq, state"
)
STORE_COLUMNS = (
    "id, name, location, timezone, negative_stock, closed_until, version, last_seq, state"
)
PRODUCT_STATES = "SELECT sku, state::text FROM products WHERE sku = ANY(%s)"
STORE_STATES = "SELECT id, state::text FROM stores WHERE id = ANY(%s)"
UPSERT_PRODUCT = """
INSERT INTO products (sku, name, description, barcode, unit, decimals, category,
    discontinued, version, last_seq, state)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description,
    barcode = excluded.barcode, unit = excluded.unit, decimals = excluded.decimals,
    category = excluded.category, discontinued = excluded.discontinued,
    version = excluded.version, last_seq = excluded.last_seq, state = excluded.state
"""
UPSERT_STORE = """
INSERT INTO stores (id, name, location, timezone, negative_stock, closed_until, version,
    last_seq, state)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, location = excluded.location,
    timezone = excluded.timezone, negative_stock = excluded.negative_stock,
    closed_until = excluded.closed_until, version = excluded.version,
    last_seq = excluded.last_seq, state = excluded.state
"""

_encode = msgspec.json.Encoder()


def _fold_products(cur: Cursor, found: list[tuple[ReplicaEvent, ProductEvent]]) -> None:
    cur.execute(PRODUCT_STATES, (list({e.sku for _, e in found}),))
    states = {sku: msgspec.json.decode(raw, type=ProductState) for sku, raw in cur.fetchall()}
    last: dict[str, ReplicaEvent] = {}
    for replica, event in found:
        states[event.sku] = evolve(states.get(event.sku, ProductState()), event)
        last[event.sku] = replica
    rows = [product_row(sku, states[sku], replica) for sku, replica in last.items()]
    cur.executemany(UPSERT_PRODUCT, rows)


def product_row(sku: str, p: ProductState, replica: ReplicaEvent) -> tuple[Any, ...]:
    """A products row (PRODUCT_COLUMNS) of the state `replica` left."""
    state = _encode.encode(p).decode()
    return (
        sku,
        p.name,
        p.description,
        p.barcode,
        p.unit,
        p.decimals,
        p.category,
        p.discontinued,
        replica.version,
        replica.seq,
        state,
    )


def store_row(id_: str, s: StoreState, replica: ReplicaEvent) -> tuple[Any, ...]:
    """A stores row (STORE_COLUMNS) of the state `replica` left."""
    state = _encode.encode(s).decode()
    return (
        id_,
        s.name,
        s.location,
        s.timezone,
        s.negative_stock,
        s.closed_until,
        replica.version,
        replica.seq,
        state,
    )


def _fold_stores(cur: Cursor, found: list[tuple[ReplicaEvent, StoreEvent]]) -> None:
    cur.execute(STORE_STATES, (list({e.store_id for _, e in found}),))
    states = {id_: msgspec.json.decode(raw, type=StoreState) for id_, raw in cur.fetchall()}
    last: dict[str, ReplicaEvent] = {}
    for replica, event in found:
        states[event.store_id] = evolve(states.get(event.store_id, StoreState()), event)
        last[event.store_id] = replica
    rows = [store_row(id_, states[id_], replica) for id_, replica in last.items()]
    cur.executemany(UPSERT_STORE, rows)


class Catalog(Projector):
    """Products (global partition) and stores (each store's partition)."""

    name = "catalog"
    tables = ("products", "stores")

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Fold the batch's product and store events onto the rows they touch."""
        products: list[tuple[ReplicaEvent, ProductEvent]] = []
        stores: list[tuple[ReplicaEvent, StoreEvent]] = []
        for replica in events:
            if not replica.type.startswith(("product.", "store.")):
                continue
            event = domain_event(replica)
            if isinstance(event, ProductEvent):
                products.append((replica, event))
            elif isinstance(event, StoreEvent):
                stores.append((replica, event))
        if products:
            _fold_products(cur, products)
        if stores:
            _fold_stores(cur, stores)

    def builder(self) -> Builder:
        """Every product's and store's state in memory, COPYed at the end."""
        return CatalogBuilder()


class CatalogBuilder:
    """The same folds as `apply`, over every event."""

    prefixes: tuple[str, ...] = ("product.", "store.")

    def __init__(self) -> None:
        self.products: dict[str, tuple[ProductState, ReplicaEvent]] = {}
        self.stores: dict[str, tuple[StoreState, ReplicaEvent]] = {}

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Fold a product or store event onto its state."""
        if not event.type.startswith(self.prefixes):
            return
        if isinstance(decoded, ProductEvent):
            product = self.products.get(decoded.sku)
            state = evolve(product[0] if product else ProductState(), decoded)
            self.products[decoded.sku] = (state, event)
        elif isinstance(decoded, StoreEvent):
            store = self.stores.get(decoded.store_id)
            after = evolve(store[0] if store else StoreState(), decoded)
            self.stores[decoded.store_id] = (after, event)

    def flush(self, cur: Cursor) -> None:
        """Nothing is final before the last event."""

    def finish(self, cur: Cursor) -> None:
        """One COPY per table."""
        with cur.copy(f"COPY {shadow('products')} ({PRODUCT_COLUMNS}) FROM STDIN") as copy:
            for sku, (product, replica) in self.products.items():
                copy.write_row(product_row(sku, product, replica))
        with cur.copy(f"COPY {shadow('stores')} ({STORE_COLUMNS}) FROM STDIN") as copy:
            for id_, (store, replica) in self.stores.items():
                copy.write_row(store_row(id_, store, replica))


# The queries: every read of the two tables.

Conn = psycopg.AsyncConnection[Any]

PRODUCTS = """
SELECT sku, version, state::text FROM products
WHERE sku > %s AND (%s::text IS NULL OR search LIKE %s OR barcode = %s)
ORDER BY sku LIMIT %s
"""
STORES = "SELECT id, version, state::text FROM stores WHERE id > %s ORDER BY id LIMIT %s"
ONE_PRODUCT = "SELECT version, state::text FROM products WHERE sku = %s"
ONE_STORE = "SELECT version, state::text FROM stores WHERE id = %s"
DECIMALS = "SELECT decimals FROM products WHERE sku = %s"
STORE_EXISTS = "SELECT 1 FROM stores WHERE id = %s"


class Product(msgspec.Struct, frozen=True):
    """A product as its stream's state holds it, with the version that state is at."""

    sku: str
    version: int
    state: ProductState


class Store(msgspec.Struct, frozen=True):
    """A store as its stream's state holds it, with the version that state is at."""

    id: str
    version: int
    state: StoreState


async def _rows(conn: Conn, query: str, params: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchall()


def contains(text: str | None) -> str | None:
    """A LIKE pattern matching strings that contain `text` (None stays None)."""
    if text is None:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_products(conn: Conn, after: str, q: str | None, limit: int) -> list[Product]:
    """Products by SKU after `after`; `q` matches SKU, name (lowered) or barcode."""
    like = contains(q.lower() if q else None)
    rows = await _rows(conn, PRODUCTS, (after, q, like, q, limit))
    return [Product(sku, version, _product_state(raw)) for sku, version, raw in rows]


async def one_product(conn: Conn, sku: str) -> Product | None:
    """The product `sku`, or None."""
    rows = await _rows(conn, ONE_PRODUCT, (sku,))
    return Product(sku, rows[0][0], _product_state(rows[0][1])) if rows else None


async def list_stores(conn: Conn, after: str, limit: int) -> list[Store]:
    """Stores by id after `after`."""
    rows = await _rows(conn, STORES, (after, limit))
    return [Store(id_, version, _store_state(raw)) for id_, version, raw in rows]


async def one_store(conn: Conn, store: str) -> Store | None:
    """The store `store`, or None."""
    rows = await _rows(conn, ONE_STORE, (store,))
    return Store(store, rows[0][0], _store_state(rows[0][1])) if rows else None


async def decimals_of(conn: Conn, sku: str) -> int | None:
    """The product's `decimals`, or None when the catalog lacks it."""
    rows = await _rows(conn, DECIMALS, (sku,))
    return int(rows[0][0]) if rows else None


async def store_exists(conn: Conn, store: str) -> bool:
    """Whether the store exists on the read side."""
    return bool(await _rows(conn, STORE_EXISTS, (store,)))


def _product_state(raw: str) -> ProductState:
    return msgspec.json.decode(raw, type=ProductState)


def _store_state(raw: str) -> StoreState:
    return msgspec.json.decode(raw, type=StoreState)
