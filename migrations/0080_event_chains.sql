-- The events' hash chain, one per store (docs/audit.md). Each event's `chain` is the hex
-- SHA-256 of the previous event's chain in the same store (64 zeros for the first) and
-- the event's canonical encoding, computed by append_events in the append's transaction.
-- Events without a store form one more chain of their own.
--
-- The canonical encoding is the jsonb text of the array
--   [id, stream, version, type, store, sku, occurred_at, recorded_at, data, metadata]
-- (ids and timestamps as strings, timestamps in UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ,
-- version a number, store and sku null when absent, data and metadata the stored jsonb):
-- jsonb's text form is canonical (keys ordered by length then bytes, ", " and ": "
-- separators, numbers as stored), so src/inventory/eventstore/chain.py and the offline
-- script of docs/audit.md rebuild it byte for byte from a row or an export line.

-- A store's chain head is its last event by position (index events_store_position; the
-- events of no store get their own index below). append_events reads it under a
-- transaction-scoped advisory lock per store (0081), which holds no row and writes no WAL.
CREATE INDEX events_storeless_position ON events (position) WHERE store IS NULL;

CREATE FUNCTION event_link(
    previous text, id uuid, stream text, version bigint, type text, store text, sku text,
    occurred_at timestamptz, recorded_at timestamptz, data jsonb, metadata jsonb
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT encode(sha256(convert_to(previous || jsonb_build_array(
    id::text, stream, version, type, store, sku,
    to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    data, metadata)::text, 'UTF8')), 'hex')
$$;

REVOKE ALL ON FUNCTION event_link FROM PUBLIC;
GRANT EXECUTE ON FUNCTION event_link TO inventory_app;

-- The events recorded before this migration get their links once, store by store in
-- position order (the order the replica's initial copy gives them too). The table lock
-- of ALTER TABLE keeps appends out until the chains and heads are in place; the guard
-- trigger is disabled only inside this transaction.
ALTER TABLE events ADD COLUMN chain text;
ALTER TABLE events DISABLE TRIGGER events_no_update_delete;

DO $$
DECLARE
    row   record;
    heads jsonb := '{}';
    part  text;
    link  text;
BEGIN
    FOR row IN SELECT * FROM events ORDER BY position LOOP
        part := coalesce(row.store, '');
        link := event_link(coalesce(heads ->> part, repeat('0', 64)), row.id, row.stream,
                           row.version, row.type, row.store, row.sku, row.occurred_at,
                           row.recorded_at, row.data, row.metadata);
        heads := heads || jsonb_build_object(part, link);
        UPDATE events SET chain = link WHERE position = row.position;
    END LOOP;
END
$$;

ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_delete;
-- No NOT NULL: a row inserted past append_events (bench/append.py's pgbench baseline, a
-- hand-made fix) stays possible, and the audit names it as a break like any other.
ALTER TABLE events ADD CONSTRAINT events_chain_hex CHECK (chain ~ '^[0-9a-f]{64}$');
