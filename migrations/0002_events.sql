-- The event store: one append-only table for every stream.
-- position: global, assigned at insert (NOT commit-ordered; the replica's seq is).
-- version:  the event's place in its stream, 1, 2, 3, ... with no gap.
-- store:    the partition key of events that belong to a store (projectors run per store).
CREATE TABLE events (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid        NOT NULL UNIQUE,
    stream      text        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    type        text        NOT NULL,
    store       text,
    sku         text,
    data        jsonb       NOT NULL,
    metadata    jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, version)
);

CREATE INDEX events_store_position ON events (store, position) WHERE store IS NOT NULL;

REVOKE ALL ON events FROM PUBLIC;
GRANT SELECT, INSERT ON events TO inventory_app;
GRANT SELECT ON events TO inventory_replication;
