-- command_once: a command decided in the API on the heads it cached, checked and written
-- in one call (src/inventory/service/once.py). In order, exactly as the locked path
-- (src/inventory/eventstore/transaction.py) takes the same locks:
--   1. the key's lock; a response stored under it is returned (one row, `id` null) and
--      nothing is written;
--   2. the written streams locked in sorted order (lock_streams, 0007), then the read
--      ones FOR SHARE in sorted order, each version compared with the one the decision
--      assumed;
--   3. on any difference, nothing written: SQLSTATE IV412 with one line per stale stream
--      (stream, assumed version, current version, current state as JSON, tab-separated)
--      in DETAIL, read under the locks; the caller rolls back and decides again on them
--      (the next call checks them like any), or takes the locked path;
--   4. else append_events (0095, called, not redefined), the response stored with its
--      position marks filled (response_with_positions, 0060), and the appended events'
--      rows returned (id, position, stream, version), in position order.
-- A version names one state: every state a stream has had was written by append_events
-- together with a new version (a placeholder at 0 has none), so equal versions mean the
-- decision saw the state it is being appended on.
--
-- The transaction commits with synchronous_commit off, like the locked path's (early lock
-- release): the caller sends the durable marker after COMMIT, in the same round trip.
CREATE FUNCTION command_once(
    key_lock text, for_principal text, for_key text, request_fingerprint bytea,
    response_status int, response_body bytea, event_ids uuid[],
    write_streams text[], write_versions bigint[], read_streams text[], read_versions bigint[],
    writes jsonb, event_metadata jsonb)
RETURNS TABLE (id uuid, "position" bigint, stream text, version bigint,
               stored_fingerprint bytea, stored_status int, stored_response bytea,
               stored_positions bigint[])
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    head  record;
    stale text[] := '{}';
    place int;
    current bigint;
    current_state jsonb;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF key_lock IS NOT NULL THEN
        -- The key's lock and lookup as src/inventory/eventstore/idempotency.py takes them
        -- (LEGACY positions for rows stored before 0060 included).
        PERFORM pg_advisory_xact_lock(hashtextextended(key_lock, 0));
        RETURN QUERY
        SELECT NULL::uuid, NULL::bigint, NULL::text, NULL::bigint,
               i.fingerprint, i.status::int, i.response,
               CASE WHEN i.fill_positions THEN ARRAY(
                   SELECT ev.position
                   FROM jsonb_array_elements(convert_from(i.response, 'UTF8')::jsonb -> 'events')
                        WITH ORDINALITY AS named(event, place)
                   JOIN events AS ev
                     ON ev.stream = named.event ->> 'stream'
                    AND ev.version = (named.event ->> 'version')::bigint
                   ORDER BY named.place) END
        FROM idempotency AS i WHERE i.principal = for_principal AND i.key = for_key;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    FOR head IN SELECT l.stream, l.version, l.state FROM lock_streams(write_streams) AS l LOOP
        place := array_position(write_streams, head.stream);
        IF head.version <> write_versions[place] THEN
            stale := stale || (head.stream || E'\t' || write_versions[place] || E'\t'
                               || head.version || E'\t' || coalesce(head.state::text, ''));
        END IF;
    END LOOP;
    -- One at a time, in sorted order: the order the locks are taken in is the point.
    FOR head IN
        SELECT n.name, n.assumed FROM unnest(read_streams, read_versions) AS n(name, assumed)
        ORDER BY n.name
    LOOP
        current := NULL;
        current_state := NULL;
        SELECT r.version, r.state INTO current, current_state
        FROM streams AS r WHERE r.stream = head.name FOR SHARE;
        IF coalesce(current, 0) <> head.assumed THEN
            stale := stale || (head.name || E'\t' || head.assumed || E'\t' || coalesce(current, 0)
                               || E'\t' || coalesce(current_state::text, ''));
        END IF;
    END LOOP;
    IF cardinality(stale) > 0 THEN
        RAISE EXCEPTION 'the cached heads of % streams are stale', cardinality(stale)
            USING ERRCODE = 'IV412', DETAIL = array_to_string(stale, E'\n');
    END IF;

    IF for_key IS NULL THEN
        RETURN QUERY
        SELECT a.id, a.position, a.stream, a.version, NULL::bytea, NULL::int, NULL::bytea,
               NULL::bigint[]
        FROM append_events(writes, event_metadata) AS a ORDER BY a.position;
        RETURN;
    END IF;
    -- `appended` runs once (it is read twice) and the INSERT runs to completion; the
    -- marks' places follow the ids' order (src/inventory/eventstore/positions.py).
    RETURN QUERY
    WITH appended AS (
        SELECT a.id, a.position, a.stream, a.version FROM append_events(writes, event_metadata) AS a
    ),
    stored AS (
        INSERT INTO idempotency (principal, key, fingerprint, status, response)
        SELECT for_principal, for_key, request_fingerprint, response_status,
               response_with_positions(response_body,
                   coalesce(array_agg(appended.position ORDER BY marked.place), '{}'))
        FROM unnest(event_ids) WITH ORDINALITY AS marked(id, place)
        JOIN appended ON appended.id = marked.id
    )
    SELECT ap.id, ap.position, ap.stream, ap.version, NULL::bytea, NULL::int, NULL::bytea,
           NULL::bigint[]
    FROM appended AS ap ORDER BY ap.position;
END
$$;

REVOKE ALL ON FUNCTION command_once FROM PUBLIC;
GRANT EXECUTE ON FUNCTION command_once TO inventory_app;
