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
    bases    bigint[] := array_fill(0::bigint, ARRAY[jsonb_array_length(writes)]);
    write    record;
    current  bigint;
    stores   text[];
    heads    text[];
    total    bigint;
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

    -- The chains' heads, each store's row locked in sorted order until COMMIT.
    SELECT array_agg(DISTINCT coalesce(e.value ->> 'store', '') ORDER BY coalesce(e.value ->> 'store', '')),
           count(*)
    INTO stores, total
    FROM jsonb_array_elements(writes) AS w(value),
         jsonb_array_elements(w.value -> 'events') AS e(value);
    IF total = 0 THEN
        RETURN;
    END IF;
    heads := _chain_heads(stores);
    IF heads IS NULL THEN
        INSERT INTO event_chains (store, head, events)
        SELECT s, repeat('0', 64), 0 FROM unnest(stores) AS s ORDER BY s
        ON CONFLICT (store) DO NOTHING;
        heads := _chain_heads(stores);
    END IF;

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
            RETURNING ev.id, ev.position, ev.stream, ev.version, ev.chain,
                      coalesce(ev.store, '') AS part
        ), moved AS (
            UPDATE event_chains AS c
            SET head = i.chain, events = c.events + 1, position = i.position
            FROM inserted AS i WHERE c.store = i.part
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
        UPDATE event_chains AS c SET head = heads[place], events = c.events + 1,
                                     position = append_events."position"
        WHERE c.store = stores[place];
    END LOOP;
END
$$;

-- The heads of `stores` (sorted, distinct), each row locked FOR UPDATE in that order;
-- NULL when a store has no row yet.
CREATE FUNCTION _chain_heads(stores text[]) RETURNS text[]
LANGUAGE sql VOLATILE AS $$
SELECT CASE WHEN count(*) = cardinality(stores) THEN array_agg(l.head ORDER BY l.store) END
FROM (SELECT c.store, c.head FROM event_chains AS c WHERE c.store = ANY(stores)
      ORDER BY c.store FOR UPDATE) AS l
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

REVOKE ALL ON FUNCTION _chain_heads, _new_events FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _chain_heads, _new_events TO inventory_app;
