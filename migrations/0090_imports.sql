-- Bulk import (docs/import.md), on the primary. A job's CSV body is kept as chunks until
-- the job is done, so that the worker, not the request, does the work and a killed
-- worker resumes from the same bytes. Each row's outcome is keyed by (scope, file SHA-256,
-- line): it is written in the transaction that appends the row's events, so a re-import
-- or a resumed job skips what already landed. Nothing here is published to the replica.
CREATE TABLE import_jobs (
    id           uuid        PRIMARY KEY,
    store        text        NOT NULL DEFAULT '',  -- '': no store (catalog only)
    status       text        NOT NULL DEFAULT 'receiving'
                 CHECK (status IN ('receiving', 'queued', 'running', 'done', 'failed')),
    file_sha     bytea,      -- NULL while the body is being received
    size         bigint      NOT NULL DEFAULT 0,
    rows         integer     NOT NULL DEFAULT 0,
    failed       integer     NOT NULL DEFAULT 0,
    error        text,
    created_by   text        NOT NULL,
    role         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX import_jobs_unfinished ON import_jobs (updated_at)
    WHERE status IN ('queued', 'running');

CREATE TABLE import_chunks (
    job_id  uuid    NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    n       integer NOT NULL,
    data    bytea   NOT NULL,
    PRIMARY KEY (job_id, n)
);

-- code NULL: the row landed (or changed nothing); otherwise the API's error code.
CREATE TABLE import_rows (
    scope     text    NOT NULL,
    file_sha  bytea   NOT NULL,
    line      integer NOT NULL,
    sku       text,
    code      text,
    message   text,
    PRIMARY KEY (scope, file_sha, line)
);

REVOKE ALL ON import_jobs, import_chunks, import_rows FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON import_jobs, import_rows TO inventory_app;
GRANT SELECT, INSERT, DELETE ON import_chunks TO inventory_app;
