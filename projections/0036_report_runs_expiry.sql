-- The worker's sweep deletes reports finished more than INVENTORY_REPORT_RETENTION_DAYS
-- ago (worker/reports.py EXPIRE), oldest first.
CREATE INDEX report_runs_finished ON report_runs (finished_at)
    WHERE status IN ('done', 'failed');
