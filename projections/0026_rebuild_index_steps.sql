-- read_model_index one step at a time: a rebuild that folded in several processes (its
-- shadows committed, src/inventory/projectors/rebuild.py) builds the shadows' constraints
-- and indexes and analyses them from two sessions at once, each step in a transaction
-- of its own (one table lock at a time: two sessions never wait for each other in a
-- cycle). The steps are those of read_model_index (0022), in the same form.

-- Every step for `tables`: each constraint ('p', 'u') and each other index of a table,
-- then its ANALYZE; `pages` (the shadow's size) weighs the step.
CREATE FUNCTION read_model_index_steps(tables text[])
RETURNS TABLE (tbl text, kind text, name text, pages bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
    size bigint;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        size := pg_relation_size(format('public.%I', t || '__rebuild')::regclass)
                / current_setting('block_size')::bigint;
        RETURN QUERY
            SELECT t, 'constraint', c.conname::text, size FROM pg_constraint c
            WHERE c.conrelid = read_model_check(t) AND c.contype IN ('p', 'u')
            UNION ALL
            SELECT t, 'index', i.relname::text, size
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = read_model_check(t)
              AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            UNION ALL
            SELECT t, 'analyze', NULL, size;
    END LOOP;
END
$$;

-- One step of read_model_index_steps on `t`'s shadow, the named constraint or index
-- copied from `t` itself (nothing else can be built through this).
CREATE FUNCTION read_model_index_step(t text, kind text, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    shadow text := t || '__rebuild';
    def text;
BEGIN
    IF kind = 'constraint' THEN
        SELECT pg_get_constraintdef(c.oid) INTO def FROM pg_constraint c
        WHERE c.conrelid = read_model_check(t) AND c.contype IN ('p', 'u') AND c.conname = name;
        IF def IS NULL THEN
            RAISE EXCEPTION 'no constraint % on %', name, t;
        END IF;
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', shadow, name || '__rebuild', def);
    ELSIF kind = 'index' THEN
        SELECT pg_get_indexdef(x.indexrelid) INTO def
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = read_model_check(t) AND i.relname = name
          AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid);
        IF def IS NULL THEN
            RAISE EXCEPTION 'no index % on %', name, t;
        END IF;
        EXECUTE regexp_replace(def, '^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+',
                               'CREATE \1INDEX ' || quote_ident(name || '__rebuild')
                               || ' ON ' || quote_ident(shadow));
    ELSIF kind = 'analyze' THEN
        PERFORM read_model_check(t);
        EXECUTE format('ANALYZE %I', shadow);
    ELSE
        RAISE EXCEPTION 'no index step %', kind;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION read_model_index_steps(text[]), read_model_index_step(text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION read_model_index_steps(text[]), read_model_index_step(text, text, text)
    TO inventory_app;
