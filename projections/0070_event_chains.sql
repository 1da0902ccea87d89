-- The events copy carries each event's `chain` (migrations/0080_event_chains.sql), as the
-- primary computed it at the append and replication copies it. Rows the copy already
-- holds get the same links the primary's migration gives them: store by store, in
-- position order, from the same canonical encoding.
ALTER TABLE events ADD COLUMN chain text;

SET LOCAL session_replication_role = replica;  -- past the copy's guard, as the apply worker

DO $$
DECLARE
    row   record;
    heads jsonb := '{}';
    link  text;
BEGIN
    FOR row IN SELECT * FROM events ORDER BY position LOOP
        link := encode(sha256(convert_to(
            coalesce(heads ->> row.partition, repeat('0', 64)) || jsonb_build_array(
                row.id::text, row.stream, row.version, row.type, row.store, row.sku,
                to_char(row.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                to_char(row.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                row.data, row.metadata)::text, 'UTF8')), 'hex');
        heads := heads || jsonb_build_object(row.partition, link);
        UPDATE events SET chain = link WHERE position = row.position;
    END LOOP;
END
$$;
