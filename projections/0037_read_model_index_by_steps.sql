-- read_model_index (0022) becomes the steps of read_model_index_steps run in order, so
-- the DDL a shadow's constraints and indexes are built with has one definition,
-- read_model_index_step (0026), whether one session builds them all or two share them.
CREATE OR REPLACE FUNCTION read_model_index(tables text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT tbl, kind, name FROM read_model_index_steps(tables) LOOP
        PERFORM read_model_index_step(s.tbl, s.kind, s.name);
    END LOOP;
END
$$;
