-- command_batch (0102) with `after`: a hot stream's commands batch too.
--
-- An API process's commands on one stream take turns (src/inventory/service/cache.py).
-- A command queued in a batch hands its turn on: the next decides on the heads the queued
-- one will leave, before they are written, and names it in `after` (places from 1 of
-- earlier calls of the same batch). Unless every call it names was written ('done'), it
-- is answered 'stale' with no heads, before it takes any lock: its versions alone would
-- not do, as the stream could have reached the same version by another write, with
-- another state. (A call it was decided after that went in an earlier batch is checked
-- by the API before this batch is sent: src/inventory/service/batcher.py.)
--
-- Everything else is 0102's, unchanged; its header holds the rest of the contract (the
-- outcomes, the locks tried and never waited for, why no deadlock, the batch's size).
CREATE OR REPLACE FUNCTION command_batch(calls jsonb)
RETURNS TABLE (call int, outcome text, id uuid, "position" bigint, stream text,
               version bigint, stored_fingerprint bytea, stored_status int,
               stored_response bytea, stored_positions bigint[], detail text)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    one       record;
    name      text;
    assumed   bigint;
    current   bigint;
    cur_state jsonb;
    stale     text[];
    ids       uuid[];
    positions bigint[];
    names     text[];
    versions  bigint[];
    code      text;
    waits     text := current_setting('lock_timeout');
    written   int[] := '{}';
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR one IN
        SELECT c.ord::int AS ord, c.value ->> 'key_lock' AS key_lock,
               c.value ->> 'principal' AS principal, c.value ->> 'key' AS key,
               decode(c.value ->> 'fingerprint', 'base64') AS fingerprint,
               (c.value ->> 'status')::int AS status,
               decode(c.value ->> 'response', 'base64') AS response,
               ARRAY(SELECT x::uuid FROM jsonb_array_elements_text(c.value -> 'event_ids') AS x)
                   AS event_ids,
               c.value -> 'write_streams' AS write_streams,
               c.value -> 'write_versions' AS write_versions,
               c.value -> 'read_streams' AS read_streams,
               c.value -> 'read_versions' AS read_versions,
               c.value -> 'writes' AS writes, c.value -> 'metadata' AS metadata,
               ARRAY(SELECT x::int FROM jsonb_array_elements_text(c.value -> 'after') AS x)
                   AS after
        FROM jsonb_array_elements(calls) WITH ORDINALITY AS c(value, ord)
    LOOP
        BEGIN
            IF NOT one.after <@ written THEN
                -- Decided on heads an earlier call of this batch was to leave, and it did
                -- not: whatever the versions say now, the decision's states may be wrong.
                RAISE EXCEPTION 'decided after a call that was not written'
                    USING ERRCODE = 'IV412', DETAIL = '';
            END IF;
            IF one.key_lock IS NOT NULL THEN
                IF NOT pg_try_advisory_xact_lock(hashtextextended(one.key_lock, 0)) THEN
                    RAISE EXCEPTION 'the key is locked' USING ERRCODE = 'lock_not_available';
                END IF;
                -- The lookup as command_once makes it (LEGACY positions included).
                RETURN QUERY
                SELECT one.ord, 'stored'::text, NULL::uuid, NULL::bigint, NULL::text,
                       NULL::bigint, i.fingerprint, i.status::int, i.response,
                       CASE WHEN i.fill_positions THEN ARRAY(
                           SELECT ev.position
                           FROM jsonb_array_elements(
                                    convert_from(i.response, 'UTF8')::jsonb -> 'events')
                                WITH ORDINALITY AS named(event, place)
                           JOIN events AS ev
                             ON ev.stream = named.event ->> 'stream'
                            AND ev.version = (named.event ->> 'version')::bigint
                           ORDER BY named.place) END,
                       NULL::text
                FROM idempotency AS i WHERE i.principal = one.principal AND i.key = one.key;
                IF FOUND THEN
                    CONTINUE;
                END IF;
            END IF;

            stale := '{}';
            PERFORM set_config('lock_timeout', '1ms', true);
            FOR name, assumed IN
                SELECT w.name, v.assumed::bigint
                FROM jsonb_array_elements_text(one.write_streams) WITH ORDINALITY AS w(name, place)
                JOIN jsonb_array_elements_text(one.write_versions) WITH ORDINALITY AS v(assumed, place)
                  ON v.place = w.place
                ORDER BY w.name
            LOOP
                SELECT s.version, s.state INTO current, cur_state
                FROM streams AS s WHERE s.stream = name FOR UPDATE NOWAIT;
                IF NOT FOUND THEN
                    INSERT INTO streams (stream, version) VALUES (name, 0)
                    ON CONFLICT (stream) DO NOTHING;
                    SELECT s.version, s.state INTO current, cur_state
                    FROM streams AS s WHERE s.stream = name FOR UPDATE NOWAIT;
                    IF NOT FOUND THEN  -- removed again meanwhile: busy, like a held lock
                        RAISE EXCEPTION 'stream % moved', name USING ERRCODE = 'lock_not_available';
                    END IF;
                END IF;
                IF current <> assumed THEN
                    stale := stale || (name || E'\t' || assumed || E'\t' || current || E'\t'
                                       || coalesce(cur_state::text, ''));
                END IF;
            END LOOP;
            FOR name, assumed IN
                SELECT r.name, v.assumed::bigint
                FROM jsonb_array_elements_text(one.read_streams) WITH ORDINALITY AS r(name, place)
                JOIN jsonb_array_elements_text(one.read_versions) WITH ORDINALITY AS v(assumed, place)
                  ON v.place = r.place
                ORDER BY r.name
            LOOP
                current := NULL;
                cur_state := NULL;
                SELECT s.version, s.state INTO current, cur_state
                FROM streams AS s WHERE s.stream = name FOR SHARE NOWAIT;
                IF coalesce(current, 0) <> assumed THEN
                    stale := stale || (name || E'\t' || assumed || E'\t' || coalesce(current, 0)
                                       || E'\t' || coalesce(cur_state::text, ''));
                END IF;
            END LOOP;
            IF cardinality(stale) > 0 THEN
                RAISE EXCEPTION 'stale heads' USING ERRCODE = 'IV412',
                    DETAIL = array_to_string(stale, E'\n');
            END IF;
            PERFORM set_config('lock_timeout', waits, true);

            -- The rows are gathered and returned after the block: a row returned inside it
            -- would stay in the result even if the block were rolled back.
            WITH appended AS (
                SELECT a.id, a.position, a.stream, a.version
                FROM append_events(one.writes, one.metadata) AS a
            ),
            stored AS (
                INSERT INTO idempotency (principal, key, fingerprint, status, response)
                SELECT one.principal, one.key, one.fingerprint, one.status,
                       response_with_positions(one.response,
                           coalesce(array_agg(appended.position ORDER BY marked.place), '{}'))
                FROM unnest(one.event_ids) WITH ORDINALITY AS marked(id, place)
                JOIN appended ON appended.id = marked.id
                HAVING one.key IS NOT NULL  -- an aggregate: WHERE would still give one row
            )
            SELECT array_agg(ap.id ORDER BY ap.position), array_agg(ap.position ORDER BY ap.position),
                   array_agg(ap.stream ORDER BY ap.position),
                   array_agg(ap.version ORDER BY ap.position)
            INTO ids, positions, names, versions
            FROM appended AS ap;
        EXCEPTION
            WHEN lock_not_available THEN
                RETURN QUERY SELECT one.ord, 'busy'::text, NULL::uuid, NULL::bigint, NULL::text,
                    NULL::bigint, NULL::bytea, NULL::int, NULL::bytea, NULL::bigint[], NULL::text;
                CONTINUE;
            WHEN SQLSTATE 'IV412' OR SQLSTATE 'IV409' THEN
                GET STACKED DIAGNOSTICS name = PG_EXCEPTION_DETAIL, code = RETURNED_SQLSTATE;
                RETURN QUERY SELECT one.ord, 'stale'::text, NULL::uuid, NULL::bigint, NULL::text,
                    NULL::bigint, NULL::bytea, NULL::int, NULL::bytea, NULL::bigint[],
                    CASE WHEN code = 'IV412' THEN name ELSE '' END;
                CONTINUE;
        END;
        written := written || one.ord;
        IF ids IS NULL THEN  -- nothing appended (no events): one row all the same
            ids := ARRAY[NULL::uuid];
            positions := ARRAY[NULL::bigint];
            names := ARRAY[NULL::text];
            versions := ARRAY[NULL::bigint];
        END IF;
        RETURN QUERY
        SELECT one.ord, 'done'::text, u.id, u.position, u.stream, u.version, NULL::bytea,
               NULL::int, NULL::bytea, NULL::bigint[], NULL::text
        FROM unnest(ids, positions, names, versions) AS u(id, position, stream, version);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION command_batch FROM PUBLIC;
GRANT EXECUTE ON FUNCTION command_batch TO inventory_app;
