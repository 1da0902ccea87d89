-- append_events with the hash chain (0080): the same contract as 0010 (read 0007's
-- header), and each event inserted with its `chain` link.
--
-- Why a lock per store, and when: two streams of one store (two SKUs) lock different
-- `streams` rows and would otherwise append side by side, committing in any order; the
-- replica numbers events (`seq`) in commit order. A transaction-scoped advisory lock per
-- store, taken after the stream locks (so no stream lock is ever awaited while a store's
-- lock is held: no deadlock) and before the first insert, and held until the transaction
-- ends, makes the store's appends read their head, take their positions and commit in one
-- order: seq order on the replica = position order within a store = chain order. Locks
-- are taken in sorted store order (a transfer touches two stores). Different stores take
-- different locks; an advisory lock holds no row and writes no WAL. The head is the
-- store's last event by position, read after the lock under a fresh READ COMMITTED
-- snapshot (hence the isolation check: an older snapshot would miss the last commit).
CREATE OR REPLACE FUNCTION append_events(writes jsonb, event_metadata jsonb)
RETURNS TABLE (id uuid, "position" bigint, stream text, version bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    bases    bigint[] := array_fill(0::bigint, ARRAY[jsonb_array_length(writes)]);
    write    record;
    current  bigint;
    stores   text[];
    heads    text[];
    total    bigint;
    part     text;
    head     text;
    chained  record;
    place    int;
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

    -- The chains' heads, each store locked in sorted order until the transaction ends.
    SELECT array_agg(DISTINCT coalesce(e.value ->> 'store', '') ORDER BY coalesce(e.value ->> 'store', '')),
           count(*)
    INTO stores, total
    FROM jsonb_array_elements(writes) AS w(value),
         jsonb_array_elements(w.value -> 'events') AS e(value);
    IF total = 0 THEN
        RETURN;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'append_events needs READ COMMITTED to read the chains'' heads';
    END IF;
    heads := '{}';
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
                   event_link(heads[array_position(stores, coalesce(n.store, ''))], n.id,
                              n.stream, n.version, n.type, n.store, n.sku, n.occurred_at,
                              recorded, n.data, event_metadata)
            FROM _new_events(writes, bases, recorded) AS n
            ORDER BY n.ord, n.place
            RETURNING ev.id, ev.position, ev.stream, ev.version
        )
        SELECT i.id, i.position, i.stream, i.version FROM inserted AS i ORDER BY i.position;
        RETURN;
    END IF;

    -- Several events of one store: each links to the one inserted before it.
    FOR chained IN
        SELECT * FROM _new_events(writes, bases, recorded) AS n ORDER BY n.ord, n.place
    LOOP
        place := array_position(stores, coalesce(chained.store, ''));
        heads[place] := event_link(heads[place], chained.id, chained.stream, chained.version,
                                   chained.type, chained.store, chained.sku,
                                   chained.occurred_at, recorded, chained.data, event_metadata);
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

-- The events of append_events' `writes`, with their versions and business times.
CREATE FUNCTION _new_events(writes jsonb, bases bigint[], recorded timestamptz)
RETURNS TABLE (ord bigint, place bigint, id uuid, stream text, version bigint, type text,
               store text, sku text, data jsonb, occurred_at timestamptz)
LANGUAGE sql STABLE AS $$
SELECT w.ord, e.place, (e.value ->> 'id')::uuid, w.value ->> 'stream', bases[w.ord] + e.place,
       e.value ->> 'type', e.value ->> 'store', e.value ->> 'sku', e.value -> 'data',
       coalesce((e.value ->> 'occurred_at')::timestamptz, recorded)
FROM jsonb_array_elements(writes) WITH ORDINALITY AS w(value, ord),
     jsonb_array_elements(w.value -> 'events') WITH ORDINALITY AS e(value, place)
$$;

REVOKE ALL ON FUNCTION _new_events FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _new_events TO inventory_app;
