-- Every conversation with a client or tech, on any channel.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('web', 'sms', 'voice', 'portal')),
    client_id TEXT,
    started_at TIMESTAMP NOT NULL
);

CREATE INDEX conversations_client_id ON conversations (client_id);
