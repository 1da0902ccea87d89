-- Read models: the catalog and the stores, as the primary's stream states hold them,
-- with a trigram index for search over SKU, name and barcode.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE products (
    sku          text        PRIMARY KEY,
    name         text        NOT NULL,
    description  text,
    barcode      text,
    unit         text        NOT NULL,
    decimals     integer     NOT NULL,
    category     text,
    discontinued boolean     NOT NULL,
    version      bigint      NOT NULL,
    last_seq     bigint      NOT NULL,
    state        jsonb       NOT NULL,
    search       text        GENERATED ALWAYS AS
        (lower(sku || ' ' || name || ' ' || coalesce(barcode, ''))) STORED
);

CREATE INDEX products_search ON products USING gin (search gin_trgm_ops);
CREATE INDEX products_barcode ON products (barcode);

CREATE TABLE stores (
    id             text        PRIMARY KEY,
    name           text        NOT NULL,
    location       text,
    timezone       text        NOT NULL,
    negative_stock text        NOT NULL,
    closed_until   timestamptz,
    version        bigint      NOT NULL,
    last_seq       bigint      NOT NULL,
    state          jsonb       NOT NULL
);

REVOKE ALL ON products, stores FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON products, stores TO inventory_app;
