-- Online rebuilds (src/inventory/projectors/rebuild.py): a rebuild fills fresh shadow
-- tables `<table>__rebuild` without indexes, indexes them once, then drops the old
-- table and renames the shadow in its place, in the rebuild's own transaction (so
-- queries read the old rows until it commits). The tables belong to the migrations'
-- role, so these functions do that DDL for inventory_app, and only on tables the role
-- may already TRUNCATE (the read models): replacing one grants it nothing new.

CREATE FUNCTION read_model_check(t text) RETURNS regclass
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF to_regclass(format('public.%I', t)) IS NULL
       OR NOT has_table_privilege('inventory_app', format('public.%I', t), 'TRUNCATE') THEN
        RAISE EXCEPTION 'not a read-model table: %', t USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN format('public.%I', t)::regclass;
END
$$;

-- Empty shadows of `tables`: columns, defaults, generated columns and CHECK constraints,
-- no index.
CREATE FUNCTION read_model_shadow(tables text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        PERFORM read_model_check(t);
        EXECUTE format('DROP TABLE IF EXISTS %I', t || '__rebuild');
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED'
                       ' INCLUDING CONSTRAINTS)', t || '__rebuild', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I TO inventory_app',
                       t || '__rebuild');
    END LOOP;
END
$$;

-- The shadows get every constraint index and index of their tables (under temporary
-- names) and fresh statistics.
CREATE FUNCTION read_model_index(tables text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
    shadow text;
    r record;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        shadow := t || '__rebuild';
        FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                 WHERE conrelid = read_model_check(t) AND contype IN ('p', 'u') LOOP
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', shadow,
                           r.conname || '__rebuild', r.def);
        END LOOP;
        FOR r IN SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = read_model_check(t)
                   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        LOOP
            EXECUTE regexp_replace(r.def, '^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+',
                                   'CREATE \1INDEX ' || quote_ident(r.name || '__rebuild')
                                   || ' ON ' || quote_ident(shadow));
        END LOOP;
        EXECUTE format('ANALYZE %I', shadow);
    END LOOP;
END
$$;

-- Each table is dropped and its shadow takes its name, its indexes' names and its
-- sequences. The caller locks the old tables first (LOCK TABLE, with a lock_timeout).
CREATE FUNCTION read_model_swap(tables text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
    shadow text;
    r record;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        shadow := t || '__rebuild';
        FOR r IN SELECT d.objid::regclass AS seq, a.attname FROM pg_depend d
                 JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE d.refobjid = read_model_check(t) AND d.deptype = 'a' LOOP
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.%I', r.seq, shadow, r.attname);
        END LOOP;
        EXECUTE format('DROP TABLE %I', t);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', shadow, t);
        FOR r IN SELECT i.relname AS name FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = format('public.%I', t)::regclass LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', r.name,
                           left(r.name, length(r.name) - length('__rebuild')));
        END LOOP;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION read_model_check(text), read_model_shadow(text[]),
    read_model_index(text[]), read_model_swap(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION read_model_check(text), read_model_shadow(text[]),
    read_model_index(text[]), read_model_swap(text[]) TO inventory_app;
