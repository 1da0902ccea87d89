-- Alert acknowledgements are events on the primary (`alert.acknowledged`, one
-- stream per alert, service/acknowledgements.py), so a rebuild of the alerts table
-- cannot forget them: the alerts query joins each open alert to the first acknowledgement
-- of its opening event (store, sku, kind and the opening event's position, which no
-- rebuild changes) in this copy of the events. This index makes that join a lookup.
CREATE INDEX events_alert_acknowledged ON events (store, sku, position)
    WHERE type = 'alert.acknowledged';
