-- Documents the shop knows; chunks, index and graph arrive with the knowledge-base issue.
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('client', 'staff')),
    content_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
