-- Webhooks find the alerts an event opened by its seq (readmodels/webhook_source.py).
CREATE INDEX alerts_opened_seq ON alerts (opened_seq);
