-- One row per stream: its current version and the folded state commands decide against.
-- Updated in the same transaction as the append; the row lock serializes writers.
CREATE TABLE streams (
    stream     text        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version >= 0),  -- 0: locked while being created
    state      jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON streams FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON streams TO inventory_app;
