-- Telnyx webhook events already handled, by Telnyx's event id: a redelivery changes nothing twice.
CREATE TABLE telnyx_events (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
