-- How far each projector has applied the events of each partition (store), by seq.
-- Advanced in the same transaction as the read-model writes it covers.
CREATE TABLE projector_checkpoints (
    projector  text        NOT NULL,
    partition  text        NOT NULL,
    seq        bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, partition)
);

REVOKE ALL ON projector_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON projector_checkpoints TO inventory_app;
