-- Users and API keys: the principals of the API. Every change is also appended to the
-- `identity` audit stream in the same transaction (without hashes: events replicate).
-- Rows are never deleted: a deleted user or revoked key keeps its row, marked, so the
-- audit trail always resolves an actor id.
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    username      text        NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    password_hash text        NOT NULL,
    role          text        NOT NULL
                  CHECK (role IN ('admin', 'manager', 'clerk', 'auditor', 'viewer')),
    stores        text[]      NOT NULL CHECK (cardinality(stores) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

-- A username names one live user; a deleted user's name may be given to someone new.
CREATE UNIQUE INDEX users_username_live ON users (username) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    prefix     text        NOT NULL UNIQUE,
    digest     bytea       NOT NULL,  -- sha256 of the whole key; the key itself is never kept
    role       text        NOT NULL
               CHECK (role IN ('admin', 'manager', 'clerk', 'auditor', 'viewer')),
    stores     text[]      NOT NULL CHECK (cardinality(stores) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

REVOKE ALL ON users, api_keys FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON users, api_keys TO inventory_app;
