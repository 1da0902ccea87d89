-- A projector that cannot apply an event of a partition (store) stops there: the
-- worker records the event and the error here, in a transaction of its own, so every
-- API process and `inventory audit verify` see the same stall, and it survives restarts.
-- A row whose projector's checkpoint has reached `seq` is past (readers ignore it; the
-- worker deletes it). Ids only: neither the event's data nor its metadata is copied.
CREATE TABLE projection_stalls (
    projector       text        NOT NULL,
    partition       text        NOT NULL,
    seq             bigint      NOT NULL,
    position        bigint      NOT NULL,
    stream          text        NOT NULL,
    event_type      text        NOT NULL,
    error_class     text        NOT NULL,
    error           text        NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (projector, partition)
);

REVOKE ALL ON projection_stalls FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_stalls TO inventory_app;
