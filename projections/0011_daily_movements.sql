-- Read model: daily movement totals per store, SKU, UTC day and stock event type.
-- day: the UTC calendar day of the event's occurred_at (not the store's local day: a
--      report across stores then adds up the same 24 hours everywhere).
-- quantity: the sum of the events' quantity (delta for stock.adjusted, the counted
--      quantity for stock.counted), exact.
CREATE TABLE daily_movements (
    store      text        NOT NULL,
    day        date        NOT NULL,
    sku        text        NOT NULL,
    type       text        NOT NULL,
    count      bigint      NOT NULL,
    quantity   numeric     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, day, sku, type)
);

-- A SKU's report across stores and days.
CREATE INDEX daily_movements_sku ON daily_movements (sku, day);

REVOKE ALL ON daily_movements FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON daily_movements TO inventory_app;
