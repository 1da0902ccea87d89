-- Logical replication of the events table to the replica (inserts only: events never
-- change, so nothing else is published).
CREATE PUBLICATION inventory_events FOR TABLE events WITH (publish = 'insert');
