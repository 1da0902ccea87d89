-- append_events: the whole append in one statement, so a command costs one round trip
-- (bench/append.py: five client round trips per append held us to a third of pgbench).
-- The writes come as one JSON document, which the client encodes in one call (msgspec)
-- where thirteen parallel arrays cost it more time than the server spent appending.
--
-- writes: [{"stream", "expected", "state", "events": [{"id", "type", "store", "sku",
-- "data", "occurred_at"}]}]. expected is -1 (any), 0 (no stream) or the exact version;
-- state (null: keep) is stored after the events, which get the next versions in order.
-- Streams are locked one by one in sorted order, so two appends over the same streams
-- queue instead of deadlocking. A stream that does not exist yet gets a row at version 0,
-- locked like any other; a write with no events and no state only locks, and a row it
-- created is removed again.
--
-- A mismatch raises SQLSTATE IV409 with the detail `stream<TAB>expected<TAB>current`,
-- which aborts the statement: nothing of the append is left. Rows come back in event order.
CREATE FUNCTION append_events(writes jsonb, event_metadata jsonb)
RETURNS TABLE (id uuid, "position" bigint, stream text, version bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    bases   bigint[] := array_fill(0::bigint, ARRAY[jsonb_array_length(writes)]);
    write   record;
    current bigint;
BEGIN
    FOR write IN
        SELECT w.value ->> 'stream' AS stream, (w.value ->> 'expected')::bigint AS expected, w.ord
        FROM jsonb_array_elements(writes) WITH ORDINALITY AS w(value, ord)
        ORDER BY 1
    LOOP
        SELECT s.version INTO current FROM streams AS s WHERE s.stream = write.stream FOR UPDATE;
        -- A new stream: create its row and lock it. Loop, because the row another append
        -- created for a write without events may have been removed again meanwhile.
        WHILE current IS NULL LOOP
            INSERT INTO streams (stream, version) VALUES (write.stream, 0)
            ON CONFLICT (stream) DO NOTHING;
            SELECT s.version INTO current FROM streams AS s WHERE s.stream = write.stream FOR UPDATE;
        END LOOP;
        IF write.expected <> -1 AND write.expected <> current THEN
            RAISE EXCEPTION 'stream % is at version %, not %',
                write.stream, current, write.expected
                USING ERRCODE = 'IV409',
                      DETAIL = write.stream || E'\t' || write.expected || E'\t' || current;
        END IF;
        bases[write.ord] := current;
    END LOOP;

    RETURN QUERY
    WITH inserted AS (
        INSERT INTO events AS ev (id, stream, version, type, store, sku, data, metadata, occurred_at)
        SELECT (e.value ->> 'id')::uuid, w.value ->> 'stream', bases[w.ord] + e.place,
               e.value ->> 'type', e.value ->> 'store', e.value ->> 'sku', e.value -> 'data',
               event_metadata, coalesce((e.value ->> 'occurred_at')::timestamptz, now())
        FROM jsonb_array_elements(writes) WITH ORDINALITY AS w(value, ord),
             jsonb_array_elements(w.value -> 'events') WITH ORDINALITY AS e(value, place)
        ORDER BY w.ord, e.place
        RETURNING ev.id, ev.position, ev.stream, ev.version
    )
    SELECT i.id, i.position, i.stream, i.version FROM inserted AS i ORDER BY i.position;

    UPDATE streams AS s
    SET version = s.version + jsonb_array_length(w.value -> 'events'),
        state = coalesce(w.value -> 'state', s.state),
        updated_at = now()
    FROM jsonb_array_elements(writes) AS w(value)
    WHERE s.stream = w.value ->> 'stream'
      AND (jsonb_array_length(w.value -> 'events') > 0 OR w.value -> 'state' IS NOT NULL);

    IF 0 = ANY (bases) THEN
        DELETE FROM streams AS s
        WHERE s.stream IN (SELECT w.value ->> 'stream' FROM jsonb_array_elements(writes) AS w(value))
          AND s.version = 0;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION append_events FROM PUBLIC;
GRANT EXECUTE ON FUNCTION append_events TO inventory_app;

-- lock_streams: lock streams for a command that decides between locking and appending
-- (the command service), in sorted order, and return their versions and states in one
-- round trip. A stream that does not exist yet gets a row at version 0 (state null),
-- which append_events removes again if the command appends nothing to it.
CREATE FUNCTION lock_streams(names text[])
RETURNS TABLE (stream text, version bigint, state jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    name  text;
    head  record;
BEGIN
    FOREACH name IN ARRAY ARRAY(SELECT DISTINCT n FROM unnest(names) AS n ORDER BY n) LOOP
        SELECT s.stream, s.version, s.state INTO head
        FROM streams AS s WHERE s.stream = name FOR UPDATE;
        WHILE head IS NULL LOOP
            INSERT INTO streams (stream, version) VALUES (name, 0) ON CONFLICT (stream) DO NOTHING;
            SELECT s.stream, s.version, s.state INTO head
            FROM streams AS s WHERE s.stream = name FOR UPDATE;
        END LOOP;
        stream := head.stream;
        version := head.version;
        state := head.state;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION lock_streams FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_streams TO inventory_app;
