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
    started_at   timestamptz,
    finished_at  timestamptz
);

REVOKE ALL ON report_runs FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON report_runs TO inventory_app;
