-- The worker's expiry sweep looks for active reservations past their expires_at
-- (src/inventory/worker/reservations.py); only active ones are indexed, a small set.
CREATE INDEX streams_active_reservations ON streams (stream)
    WHERE stream LIKE 'reservation-%' AND state ->> 'status' = 'active';
