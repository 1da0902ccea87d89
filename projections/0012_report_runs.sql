-- Reports requested with POST /v1/reports, built by a worker (queue `reports`).
-- Not a projection of events: a rebuild of the read models leaves it alone.
CREATE TABLE report_runs (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('movements', 'stock')),
    params       jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'queued'
                             CHECK (status IN ('queued', 'running', 'done', 'failed')),
    requested_by text        NOT NULL,
    rows         jsonb,
    error        text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz NOT NULL DEFAULT now(),  -- last message sent for it
    started_at   timestamptz,
    finished_at  timestamptz
);

-- The worker's sweep re-sends reports whose message was lost (status queued or running).
CREATE INDEX report_runs_unfinished ON report_runs (sent_at) WHERE status IN ('queued', 'running');

REVOKE ALL ON report_runs FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON report_runs TO inventory_app;
