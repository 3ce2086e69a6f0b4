-- The SMS receptionist (ADR 0023). One row per inbound text Telnyx delivered, written in the
-- webhook's transaction together with its `telnyx_events` row, then worked by the `sms` worker:
--   pending  waiting to be answered (user_message_id set once the text is in its conversation)
--   sending  the reply is stored in the conversation and waits to be texted (retried with backoff)
--   sent     Telnyx accepted the reply (telnyx_message_id)
--   failed   the reply could not be texted for good (last_error says why: SMS off, bad number, 4xx)
--   ignored  nothing is sent (the number opted out, or it is not a number we can text)
CREATE TABLE sms_texts (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'ignored')),
    conversation_id TEXT NULL,
    client_id TEXT NULL,
    user_message_id TEXT NULL,
    reply TEXT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A worker that claimed the row owns it until then (a crashed worker's claim runs out).
    lease_until TIMESTAMP NULL,
    last_error TEXT NOT NULL DEFAULT '',
    telnyx_message_id TEXT NULL,
    received_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX sms_texts_due ON sms_texts (state, next_attempt_at);
CREATE INDEX sms_texts_phone ON sms_texts (phone, received_at);

-- Numbers that texted STOP (any number, client or not); START removes the row.
CREATE TABLE sms_opt_outs (
    phone TEXT PRIMARY KEY,
    opted_out_at TIMESTAMP NOT NULL
);
