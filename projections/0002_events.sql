-- The subscriber's copy of the primary's events.
-- seq: filled by the apply worker as it applies transactions in the primary's commit
--      order, so it is a gap-safe, commit-ordered cursor (position is not: identity
--      values become visible out of commit order on the primary).
-- partition: the projector partition, '' for events that belong to no store.
CREATE TABLE events (
    position    bigint      PRIMARY KEY,
    id          uuid        NOT NULL,
    stream      text        NOT NULL,
    version     bigint      NOT NULL,
    type        text        NOT NULL,
    store       text,
    sku         text,
    data        jsonb       NOT NULL,
    metadata    jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    seq         bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    partition   text        GENERATED ALWAYS AS (coalesce(store, '')) STORED,
    UNIQUE (stream, version)
);

CREATE INDEX events_partition_seq ON events (partition, seq);

REVOKE ALL ON events FROM PUBLIC;
GRANT SELECT ON events TO inventory_app;

-- Only the subscription writes here. Its apply worker runs with
-- session_replication_role = replica, so this ordinary trigger does not fire for it,
-- and fires for every other session.
CREATE FUNCTION events_copy_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events copy is written only by replication: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_copy_no_change
    BEFORE INSERT OR UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_copy_refuse_change();

CREATE TRIGGER events_copy_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_copy_refuse_change();
