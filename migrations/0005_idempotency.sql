-- Exactly-once commands: the first response to (principal, key), replayed on retries.
-- fingerprint is a hash of the request (method, path, body); another body is refused.
CREATE TABLE idempotency (
    principal   text        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    status      smallint    NOT NULL,
    response    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

CREATE INDEX idempotency_created_at ON idempotency (created_at);

REVOKE ALL ON idempotency FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON idempotency TO inventory_app;
