-- Event history for auditors (GET /v1/events, GET /v1/streams/{stream}/events, events export).
-- By store: events_partition_seq (0002). By stream: the (stream, version) key (0002).
-- By SKU, in seq order: this index; a SKU's events are few beside a store's.
CREATE INDEX events_sku_seq ON events (sku, seq) WHERE sku IS NOT NULL;
