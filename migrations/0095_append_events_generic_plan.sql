-- append_events without re-planning: the same contract as 0081 (read 0007's and 0081's
-- headers) and the same links, byte for byte (event_link's expression, 0080).
--
-- Why: 0081's statements took a new ("custom") plan on every call. PL/pgSQL plans a
-- statement with its variables as constants for the first calls and keeps that habit
-- whenever the generic plan does not look cheaper; 0081's insert inlined `_new_events`
-- and `event_link`, so each custom plan parsed and planned both bodies again: about a
-- third of the primary's CPU per append (perf: base_yyparse and the planner under
-- GetCachedPlan), most of the ~280 us the chain added to an append. Here the function
-- plans each statement once per connection (`plan_cache_mode`), the link is written out
-- in the insert rather than called, and the stores come from the writes' loop instead of
-- a second pass over the JSON.
CREATE OR REPLACE FUNCTION append_events(writes jsonb, event_metadata jsonb)
RETURNS TABLE (id uuid, "position" bigint, stream text, version bigint)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    bases    bigint[] := array_fill(0::bigint, ARRAY[jsonb_array_length(writes)]);
    write    record;
    current  bigint;
    stores   text[] := '{}';
    heads    text[] := '{}';
    total    bigint := 0;
    part     text;
    head     text;
    chained  record;
    place    int;
    recorded timestamptz := now();
BEGIN
    FOR write IN
        SELECT w.value ->> 'stream' AS stream, (w.value ->> 'expected')::bigint AS expected,
               coalesce(jsonb_array_length(w.value -> 'events'), 0) AS added,
               w.value -> 'state' AS state, w.value -> 'events' AS events, w.ord
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
        IF write.added > 0 THEN
            total := total + write.added;
            FOR part IN
                SELECT coalesce(e.value ->> 'store', '') FROM jsonb_array_elements(write.events) AS e(value)
            LOOP
                IF NOT part = ANY (stores) THEN
                    stores := stores || part;
                END IF;
            END LOOP;
        END IF;
    END LOOP;

    IF total = 0 THEN
        RETURN;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'append_events needs READ COMMITTED to read the chains'' heads';
    END IF;
    -- The chains' heads, each store locked in sorted order until the transaction ends.
    stores := ARRAY(SELECT s FROM unnest(stores) AS s ORDER BY s);
    FOREACH part IN ARRAY stores LOOP
        PERFORM pg_advisory_xact_lock(7806, hashtext(part));  -- 7806: the chains' lock space
        IF part = '' THEN
            SELECT e.chain INTO head FROM events AS e WHERE e.store IS NULL
            ORDER BY e.position DESC LIMIT 1;
        ELSE
            SELECT e.chain INTO head FROM events AS e WHERE e.store = part
            ORDER BY e.position DESC LIMIT 1;
        END IF;
        heads := heads || coalesce(head, repeat('0', 64));
    END LOOP;

    IF total = cardinality(stores) THEN
        -- One event per store (a one-line sale, a receipt): every link follows a head.
        RETURN QUERY
        WITH inserted AS (
            INSERT INTO events AS ev (id, stream, version, type, store, sku, data, metadata,
                                      occurred_at, recorded_at, chain)
            SELECT n.id, n.stream, n.version, n.type, n.store, n.sku, n.data, event_metadata,
                   n.occurred_at, recorded,
                   encode(sha256(convert_to(
                       heads[array_position(stores, coalesce(n.store, ''))]
                       || jsonb_build_array(
                           n.id::text, n.stream, n.version, n.type, n.store, n.sku,
                           to_char(n.occurred_at AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           n.data, event_metadata)::text,
                       'UTF8')), 'hex')
            FROM (
                SELECT w.ord, e.place, (e.value ->> 'id')::uuid AS id, w.value ->> 'stream' AS stream,
                       bases[w.ord] + e.place AS version, e.value ->> 'type' AS type,
                       e.value ->> 'store' AS store, e.value ->> 'sku' AS sku,
                       e.value -> 'data' AS data,
                       coalesce((e.value ->> 'occurred_at')::timestamptz, recorded) AS occurred_at
                FROM jsonb_array_elements(writes) WITH ORDINALITY AS w(value, ord),
                     jsonb_array_elements(w.value -> 'events') WITH ORDINALITY AS e(value, place)
            ) AS n
            ORDER BY n.ord, n.place
            RETURNING ev.id, ev.position, ev.stream, ev.version
        )
        SELECT i.id, i.position, i.stream, i.version FROM inserted AS i ORDER BY i.position;
        RETURN;
    END IF;

    -- Several events of one store: each links to the one inserted before it.
    FOR chained IN
        SELECT w.ord, e.place, (e.value ->> 'id')::uuid AS id, w.value ->> 'stream' AS stream,
               bases[w.ord] + e.place AS version, e.value ->> 'type' AS type,
               e.value ->> 'store' AS store, e.value ->> 'sku' AS sku, e.value -> 'data' AS data,
               coalesce((e.value ->> 'occurred_at')::timestamptz, recorded) AS occurred_at
        FROM jsonb_array_elements(writes) WITH ORDINALITY AS w(value, ord),
             jsonb_array_elements(w.value -> 'events') WITH ORDINALITY AS e(value, place)
        ORDER BY w.ord, e.place
    LOOP
        place := array_position(stores, coalesce(chained.store, ''));
        heads[place] := encode(sha256(convert_to(heads[place] || jsonb_build_array(
            chained.id::text, chained.stream, chained.version, chained.type, chained.store,
            chained.sku,
            to_char(chained.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            chained.data, event_metadata)::text, 'UTF8')), 'hex');
        INSERT INTO events AS ev (id, stream, version, type, store, sku, data, metadata,
                                  occurred_at, recorded_at, chain)
        VALUES (chained.id, chained.stream, chained.version, chained.type, chained.store,
                chained.sku, chained.data, event_metadata, chained.occurred_at, recorded,
                heads[place])
        RETURNING ev.id, ev.position, ev.stream, ev.version
        INTO id, "position", stream, version;
        RETURN NEXT;
    END LOOP;
END
$$;

-- 0081's helper, inlined above.
DROP FUNCTION _new_events(jsonb, bigint[], timestamptz);
