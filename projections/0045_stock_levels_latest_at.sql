-- The projector's folded StockState (`stock_levels.state`) gains `latest_at` (primary
-- migration 0055): rows folded before get it from the events they folded, so the state
-- an incremental fold carries on from is the one a rebuild gives.
UPDATE stock_levels AS l
SET state = l.state || jsonb_build_object('latest_at', to_char((
    SELECT max(e.occurred_at) FROM events AS e
    WHERE e.stream = 'stock-' || l.store || '-' || l.sku AND e.seq <= l.last_seq
) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
WHERE l.state ->> 'latest_at' IS NULL;
