-- A booking the assistant proposed and the client has not confirmed yet: at most one per
-- conversation. Only the client's next message can confirm it (ADR 0016); it is deleted when
-- read, so it is used once, and it is ignored after `expires_at`.
CREATE TABLE booking_proposals (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations (id),
    client_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    vehicle_label TEXT NOT NULL,
    -- ["diagnostics", …] as JSON text.
    services TEXT NOT NULL,
    problem TEXT NOT NULL,
    -- The slot as jobs lists it: YYYY-MM-DD, window code, "10:00" (shop time).
    slot_date TEXT NOT NULL,
    window_code TEXT NOT NULL,
    slot_start TEXT NOT NULL,
    -- The sentence the client was asked to confirm.
    summary TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
