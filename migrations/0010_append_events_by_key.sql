-- append_events, each stream updated by its key: the same contract as 0007 (read its
-- header), but every row is updated (or its placeholder removed) by primary key in the
-- loop that locks it. 0007's set-based UPDATE and DELETE joined `streams` with the
-- writes' JSON, which the planner, underestimating a fast-growing `streams`, ran as a
-- scan: they were two thirds of a single-line sale's time on the primary.
CREATE OR REPLACE FUNCTION append_events(writes jsonb, event_metadata jsonb)
RETURNS TABLE (id uuid, "position" bigint, stream text, version bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    bases   bigint[] := array_fill(0::bigint, ARRAY[jsonb_array_length(writes)]);
    write   record;
    current bigint;
BEGIN
    FOR write IN
        SELECT w.value ->> 'stream' AS stream, (w.value ->> 'expected')::bigint AS expected,
               coalesce(jsonb_array_length(w.value -> 'events'), 0) AS added, w.value -> 'state' AS state,
               w.ord
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
        IF current = 0 AND write.added = 0 THEN
            -- A placeholder (ours, or lock_streams' in this transaction) nothing was
            -- appended to: removed, as 0007 did.
            DELETE FROM streams AS s WHERE s.stream = write.stream;
        ELSIF write.added > 0 OR write.state IS NOT NULL THEN
            UPDATE streams AS s
            SET version = s.version + write.added,
                state = coalesce(write.state, s.state),
                updated_at = now()
            WHERE s.stream = write.stream;
        END IF;
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
END
$$;
