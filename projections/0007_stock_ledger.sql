-- Read model: one row per stock event, in seq (recorded) order. `delta` is the event's
-- on-hand delta as stated (absorbed or not: a bitemporal question may predate the count
-- that absorbs it); for a count it is the change the count made. `counted` holds a
-- count's quantity, the *_delta columns what the event did to the other quantities.
CREATE TABLE stock_ledger (
    seq                  bigint      PRIMARY KEY,
    position             bigint      NOT NULL,
    store                text        NOT NULL,
    sku                  text        NOT NULL,
    version              bigint      NOT NULL,
    type                 text        NOT NULL,
    occurred_at          timestamptz NOT NULL,
    recorded_at          timestamptz NOT NULL,
    delta                numeric     NOT NULL,
    counted              numeric,
    reserved_delta       numeric     NOT NULL,
    in_transit_in_delta  numeric     NOT NULL,
    in_transit_out_delta numeric     NOT NULL,
    on_hand_after        numeric     NOT NULL,
    reserved_after       numeric     NOT NULL,
    available_after      numeric     NOT NULL,
    in_transit_in_after  numeric     NOT NULL,
    in_transit_out_after numeric     NOT NULL,
    reason               text,
    reference            text,
    actor                text,
    absorbed             boolean     NOT NULL
);

CREATE INDEX stock_ledger_item_seq ON stock_ledger (store, sku, seq);
CREATE INDEX stock_ledger_item_occurred ON stock_ledger (store, sku, occurred_at)
    INCLUDE (recorded_at, seq, type, delta, counted);

REVOKE ALL ON stock_ledger FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON stock_ledger TO inventory_app;

-- Alerts, written by the same projector from the same fold. At most one open alert per
-- item and kind; closed ones stay as history.
CREATE TABLE alerts (
    id          bigserial   PRIMARY KEY,
    store       text        NOT NULL,
    sku         text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('low_stock', 'negative_stock', 'count_discrepancy')),
    opened_seq  bigint      NOT NULL,
    opened_at   timestamptz NOT NULL,
    closed_seq  bigint,
    closed_at   timestamptz,
    details     jsonb       NOT NULL
);

CREATE UNIQUE INDEX alerts_one_open ON alerts (store, sku, kind) WHERE closed_seq IS NULL;
CREATE INDEX alerts_open_by_store ON alerts (store, kind, id) WHERE closed_seq IS NULL;

REVOKE ALL ON alerts FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON alerts TO inventory_app;
GRANT USAGE, SELECT ON SEQUENCE alerts_id_seq TO inventory_app;
