-- Rule 4 (domain/availability.py): a stock state records `latest_at`, the latest
-- occurred_at of its stream's events, so a command dated at or after it (and after the
-- latest count) is checked without reading the stream's history. States stored before it
-- existed get it here from their events: without it they would read it on every command.
UPDATE streams AS s
SET state = s.state || jsonb_build_object(
    'latest_at', to_char(l.latest AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM (
    SELECT stream, max(occurred_at) AS latest FROM events
    WHERE stream LIKE 'stock-%' GROUP BY stream
) AS l
WHERE s.stream = l.stream AND s.state IS NOT NULL AND s.state ->> 'latest_at' IS NULL;
