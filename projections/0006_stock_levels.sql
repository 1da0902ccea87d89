-- Read model: each item's quantities at each store, with the folded domain state they
-- come from (so the projector resumes from the row, never from the events).
CREATE TABLE stock_levels (
    store          text        NOT NULL,
    sku            text        NOT NULL,
    on_hand        numeric     NOT NULL,
    reserved       numeric     NOT NULL,
    available      numeric     NOT NULL,
    in_transit_in  numeric     NOT NULL,
    in_transit_out numeric     NOT NULL,
    reorder_min    numeric,
    reorder_max    numeric,
    version        bigint      NOT NULL,
    last_seq       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL,
    state          jsonb       NOT NULL,
    PRIMARY KEY (store, sku)
);

CREATE INDEX stock_levels_sku_store ON stock_levels (sku, store);
CREATE INDEX stock_levels_below_reorder ON stock_levels (store, sku)
    WHERE available < reorder_min;

REVOKE ALL ON stock_levels FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON stock_levels TO inventory_app;
