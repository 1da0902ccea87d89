-- Read model: each stream's latest version and the seq of the event that set it.
CREATE TABLE stream_heads (
    stream     text        PRIMARY KEY,
    partition  text        NOT NULL,
    version    bigint      NOT NULL,
    last_seq   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stream_heads_partition ON stream_heads (partition);

REVOKE ALL ON stream_heads FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON stream_heads TO inventory_app;
