-- command_batch_chains: command_batch (0102, 0103) for a batch of SEVERAL stores, so an API
-- process's commands of every store that arrive together share one transaction.
--
-- Why first: append_events takes a store's chain lock (0081) when a call writes, and waits
-- for it. A batch of one store waits for one chain lock, so no wait-for cycle (0102's
-- header). A batch of several would take its stores' chain locks in its calls' order,
-- each while holding the ones before: it could hold C and wait for B while a transfer on
-- the locked path (B and C, in sorted order) holds B and waits for C, or another
-- process's batch holds B and waits for C. So this function takes every chain lock the
-- batch's events need FIRST, holding nothing else yet, in append_events' own order
-- (sorted by store, '' for the catalog's), and only then runs command_batch, whose calls
-- take every other lock without waiting (keys tried, streams NOWAIT, a new stream's row
-- under a 1 ms lock_timeout) and whose append_events takes each chain lock again
-- (re-entrant: already held). Every holder of chain locks then takes them in one order
-- and waits for nothing a batch holds while holding them: no cycle.
--
-- The cost: a batch holds its stores' chain locks from its start to its commit (one
-- store's batch held its lock from its first write), so the locked path of those stores
-- waits for the whole batch; and one store's held chain lock delays the batch's other
-- stores. Calls that end stale, busy or stored took their stores' locks for nothing.
-- If the wait ends in lock_not_available (a lock_timeout set on the role), every call is
-- answered 'busy' and goes down the locked path; nothing is held.
CREATE FUNCTION command_batch_chains(calls jsonb)
RETURNS TABLE (call int, outcome text, id uuid, "position" bigint, stream text,
               version bigint, stored_fingerprint bytea, stored_status int,
               stored_response bytea, stored_positions bigint[], detail text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    stores text[];
    part   text;
BEGIN
    SELECT array_agg(DISTINCT coalesce(e.value ->> 'store', '')
                     ORDER BY coalesce(e.value ->> 'store', ''))
    INTO stores
    FROM jsonb_array_elements(calls) AS c(value),
         jsonb_array_elements(c.value -> 'writes') AS w(value),
         jsonb_array_elements(w.value -> 'events') AS e(value);
    BEGIN
        FOREACH part IN ARRAY coalesce(stores, '{}') LOOP
            PERFORM pg_advisory_xact_lock(7806, hashtext(part));  -- as append_events (0081)
        END LOOP;
    EXCEPTION
        WHEN lock_not_available THEN
            RETURN QUERY
            SELECT c.ord::int, 'busy'::text, NULL::uuid, NULL::bigint, NULL::text,
                   NULL::bigint, NULL::bytea, NULL::int, NULL::bytea, NULL::bigint[],
                   NULL::text
            FROM jsonb_array_elements(calls) WITH ORDINALITY AS c(value, ord);
            RETURN;
    END;
    RETURN QUERY SELECT * FROM command_batch(calls);
END
$$;

REVOKE ALL ON FUNCTION command_batch_chains FROM PUBLIC;
GRANT EXECUTE ON FUNCTION command_batch_chains TO inventory_app;
