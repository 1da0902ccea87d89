-- Webhook subscriptions (docs/webhooks.md) and their delivery log, on the primary: the
-- API writes subscriptions, the worker writes cursors and deliveries. Nothing here is
-- published: the replica never sees a secret.
--
-- after_seq, after_part: the subscription's cursor in the replica's events copy. Every
-- item up to it was delivered: part 0 is the event at that seq, parts 1.. the alerts the
-- event opened. The worker advances it in the transaction that records the delivery.
CREATE TABLE webhook_subscriptions (
    id              uuid        PRIMARY KEY,
    url             text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    stores          text[]      NOT NULL CHECK (cardinality(stores) > 0),
    types           text[],     -- NULL: every type
    description     text        CHECK (length(description) <= 512),
    secret          text        NOT NULL,
    previous_secret text,
    previous_until  timestamptz,
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    after_seq       bigint      NOT NULL CHECK (after_seq >= 0),
    after_part      integer     NOT NULL DEFAULT 0,
    disabled_at     timestamptz,
    disabled_reason text,
    deleted_at      timestamptz
);

CREATE INDEX webhook_subscriptions_live ON webhook_subscriptions (created_at)
    WHERE deleted_at IS NULL AND disabled_at IS NULL;

-- One row per message: `webhook_id` is the message id the receiver sees, the same on
-- every attempt; `body` is kept so that every attempt sends the very same bytes.
CREATE TABLE webhook_deliveries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  uuid        NOT NULL REFERENCES webhook_subscriptions (id),
    webhook_id       text        NOT NULL,
    seq              bigint,     -- NULL for a test delivery
    part             integer     NOT NULL DEFAULT 0,
    type             text        NOT NULL,
    body             text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    first_failed_at  timestamptz,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (subscription_id, webhook_id)
);

CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, next_attempt_at)
    WHERE status = 'pending';

REVOKE ALL ON webhook_subscriptions, webhook_deliveries FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON webhook_subscriptions, webhook_deliveries TO inventory_app;
