-- append_events with the hash chain (0080): the same contract as 0010 (read 0007's
-- header), and each event inserted with its `chain` link.
--
-- Why the store's chain row is locked, and when: two streams of one store (two SKUs) lock
-- different `streams` rows and would otherwise append side by side, committing in any
-- order; the replica numbers events (`seq`) in commit order. Locking the store's
-- event_chains row after the streams (so no stream lock is ever awaited while a chain row
-- is held: no deadlock) and before the first insert makes the store's appends take their
-- links, their positions and their commits in one order: seq order on the replica equals
-- position order within a store equals chain order. Rows are locked in sorted store order
-- (a transfer touches two stores). Different stores lock different rows: no shared queue.
CREATE OR REPLACE FUNCTION append_events(writes jsonb, event_metadata jsonb)
RETURNS TABLE (id uuid, "position" bigint, stream text, version bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    bases   bigint[] := array_fill(0::bigint, ARRAY[jsonb_array_length(writes)]);
    write   record;
    current bigint;
    chained record;
    heads   jsonb := '{}';
    head    text;
    added   record;
    part    text;
    link    text;
    counts   jsonb := '{}';
    lasts    jsonb := '{}';
    landed   bigint;
    recorded timestamptz := now();
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
            DELETE FROM streams AS s WHERE s.stream = write.stream;
        ELSIF write.added > 0 OR write.state IS NOT NULL THEN
            UPDATE streams AS s
            SET version = s.version + write.added,
                state = coalesce(write.state, s.state),
                updated_at = now()
            WHERE s.stream = write.stream;
        END IF;
    END LOOP;

    -- The chains' heads, each store's row locked until COMMIT (see the header).
    FOR added IN
        SELECT coalesce(e.value ->> 'store', '') AS store, count(*) AS events
        FROM jsonb_array_elements(writes) AS w(value),
             jsonb_array_elements(w.value -> 'events') AS e(value)
        GROUP BY 1 ORDER BY 1
    LOOP
        SELECT c.head INTO head FROM event_chains AS c WHERE c.store = added.store FOR UPDATE;
        IF head IS NULL THEN
            INSERT INTO event_chains (store, head, events) VALUES (added.store, repeat('0', 64), 0)
            ON CONFLICT (store) DO NOTHING;
            SELECT c.head INTO head FROM event_chains AS c WHERE c.store = added.store FOR UPDATE;
        END IF;
        heads := heads || jsonb_build_object(added.store, head);
        counts := counts || jsonb_build_object(added.store, added.events);
    END LOOP;

    FOR chained IN
        SELECT (e.value ->> 'id')::uuid AS id, w.value ->> 'stream' AS stream,
               bases[w.ord] + e.place AS version, e.value ->> 'type' AS type,
               e.value ->> 'store' AS store, e.value ->> 'sku' AS sku, e.value -> 'data' AS data,
               coalesce((e.value ->> 'occurred_at')::timestamptz, recorded) AS occurred_at
        FROM jsonb_array_elements(writes) WITH ORDINALITY AS w(value, ord),
             jsonb_array_elements(w.value -> 'events') WITH ORDINALITY AS e(value, place)
        ORDER BY w.ord, e.place
    LOOP
        part := coalesce(chained.store, '');
        link := event_link(heads ->> part, chained.id, chained.stream, chained.version,
                           chained.type, chained.store, chained.sku, chained.occurred_at, recorded,
                           chained.data, event_metadata);
        heads := heads || jsonb_build_object(part, link);
        INSERT INTO events AS ev (id, stream, version, type, store, sku, data, metadata,
                                  occurred_at, recorded_at, chain)
        VALUES (chained.id, chained.stream, chained.version, chained.type, chained.store,
                chained.sku, chained.data, event_metadata, chained.occurred_at, recorded, link)
        RETURNING ev.id, ev.position, ev.stream, ev.version
        INTO id, "position", stream, version;
        landed := "position";
        lasts := lasts || jsonb_build_object(part, landed);
        RETURN NEXT;
    END LOOP;

    UPDATE event_chains AS c
    SET head = heads ->> c.store, events = c.events + (counts ->> c.store)::bigint,
        position = (lasts ->> c.store)::bigint
    WHERE counts ? c.store;
END
$$;
