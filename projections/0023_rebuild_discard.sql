-- A rebuild that folds in several processes commits its shadows before filling them
-- (src/inventory/projectors/rebuild.py); if it fails, it drops them with this, under its
-- projectors' advisory locks. Only shadows of read-model tables (read_model_check).

CREATE FUNCTION read_model_discard(tables text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        PERFORM read_model_check(t);
        EXECUTE format('DROP TABLE IF EXISTS %I', t || '__rebuild');
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION read_model_discard(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION read_model_discard(text[]) TO inventory_app;
