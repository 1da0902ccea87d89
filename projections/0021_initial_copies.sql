-- Subscriptions whose initial copy has been put in position order (runtime/migrations.py:
-- the copy reads the primary's heap in physical order, which can invert a stream's
-- versions; the rows are renumbered once, before any projector reads them).
CREATE TABLE initial_copies (
    subscription text        PRIMARY KEY,
    rows         bigint      NOT NULL,
    ordered_at   timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON initial_copies FROM PUBLIC;
GRANT SELECT ON initial_copies TO inventory_app;
