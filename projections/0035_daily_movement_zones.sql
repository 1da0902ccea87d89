-- Daily movement totals by the store's business day (projectors/daily_movements.py): the
-- day of occurred_at in the store's time zone, the zone being the one the store had when
-- the event was recorded. Before this, days were UTC days.
COMMENT ON COLUMN daily_movements.day IS
    'the calendar day of occurred_at in the store''s time zone (daily_movement_zones)';

-- Each store's time zone as the daily_movements projector last folded it: the zone that
-- dates the store's next movements. Part of that read model (rebuilt with it).
CREATE TABLE daily_movement_zones (
    store    text PRIMARY KEY,
    timezone text NOT NULL
);

REVOKE ALL ON daily_movement_zones FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON daily_movement_zones TO inventory_app;

-- Totals folded by UTC day are re-folded by local day: the worker projects the read model
-- again from the first event (a missing checkpoint reads as 0), store by store. The
-- projector's lock, as a rebuild takes it (projectors/engine.py LOCK_PREFIX): a worker
-- batch in flight finishes first, and the next ones leave this read model alone until
-- this commits.
SELECT pg_advisory_xact_lock(hashtext('inventory.projector:daily_movements'));
TRUNCATE daily_movements;
DELETE FROM projector_checkpoints WHERE projector = 'daily_movements';
