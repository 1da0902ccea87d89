-- The highest primary position each projector has applied in each partition, beside its
-- seq: the read side's answer to "how far have you got" (X-Read-Position).
ALTER TABLE projector_checkpoints ADD COLUMN position bigint NOT NULL DEFAULT 0;
