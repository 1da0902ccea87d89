-- A stored response may be a command result whose events' positions were not known when
-- it was stored: the command service sends the append, the response and COMMIT in one
-- round trip, and the primary assigns positions only as it inserts the events. Such a
-- response is stored with positions 0 and `fill_positions`; a replay reads the positions
-- of the events it names (by stream and version) and answers the bytes first sent.
ALTER TABLE idempotency ADD COLUMN fill_positions boolean NOT NULL DEFAULT false;
