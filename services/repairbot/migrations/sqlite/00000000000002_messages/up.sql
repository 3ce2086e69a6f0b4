-- Every message of a conversation: the caller's text and the assistant's replies, with the tools
-- the reply called (arguments and results) and the records it cited, as JSON text.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    mode TEXT CHECK (mode IN ('model', 'offline', 'refused', 'error')),
    -- [{"name","arguments","result","refused"}]
    tool_calls TEXT NOT NULL DEFAULT '[]',
    -- [{"kind","id","label","url"}]
    sources TEXT NOT NULL DEFAULT '[]',
    -- Who sent it (x-omneuro-actor form: client:cli_…, staff:stf_…:tech, system:site).
    actor TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (conversation_id, seq)
);

CREATE INDEX messages_created_at ON messages (created_at);
