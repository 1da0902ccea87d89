-- The live feed's publisher: per partition (store), the last seq published to Redis.
-- The row is also the partition's publishing lock, so two workers never publish the same
-- range twice or out of order; it advances only after Redis accepted the messages.
CREATE TABLE feed_published (
    partition  text        PRIMARY KEY,
    seq        bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON feed_published FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON feed_published TO inventory_app;
