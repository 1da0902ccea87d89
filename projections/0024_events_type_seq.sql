-- migrate: no-transaction
-- GET /v1/events?type= across every store (projectors/history.py): one range of this
-- index in seq order, instead of the seq index filtered by type, which reads every
-- event of the other types to find a rare type's (the last page of `product.registered`
-- read the whole history). Built concurrently: the apply worker keeps writing events.
CREATE INDEX CONCURRENTLY events_type_seq ON events (type, seq);
