DROP TABLE chunks;
CREATE TABLE documents_v1 (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('client', 'staff')),
    content_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
INSERT OR IGNORE INTO documents_v1 SELECT id, title, body, visibility, content_hash, created_at FROM documents;
DROP TABLE documents;
ALTER TABLE documents_v1 RENAME TO documents;
