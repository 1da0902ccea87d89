-- Retention of import outcomes (docs/import.md): each row's outcome says when it was
-- recorded, so that the worker's sweep can delete those of files no job has used for
-- INVENTORY_IMPORT_RETENTION_DAYS. now() is not volatile: read once, no table rewrite; rows
-- already stored count from this migration.
ALTER TABLE import_rows ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();

GRANT DELETE ON import_jobs, import_rows TO inventory_app;
