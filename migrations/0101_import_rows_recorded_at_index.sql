-- migrate: no-transaction
-- The sweep's retention (imports/retention.py) reads the oldest outcomes first, a bounded
-- batch at a time, instead of scanning every row of every import. Built concurrently:
-- imports keep writing outcomes.
CREATE INDEX CONCURRENTLY import_rows_recorded_at ON import_rows (recorded_at);
