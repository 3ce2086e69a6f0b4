-- Documents get a format, an owner client, a source ref (putting the same ref again replaces the
-- document) and one de-duplication key instead of a unique body hash: `src:<ref>` for sourced
-- documents, `hash:<visibility>:<owner>:<sha256>` for the rest (the same body is stored once per
-- audience, never shared across two clients). Chunks are stored here; the search index is derived.
CREATE TABLE documents_v2 (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('client', 'staff')),
    content_hash TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'text' CHECK (format IN ('text', 'markdown', 'html', 'pdf')),
    owner_client TEXT,
    source_ref TEXT UNIQUE,
    dedupe_key TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO documents_v2 (id, title, body, visibility, content_hash, format, owner_client,
                          source_ref, dedupe_key, created_at, updated_at)
SELECT id, title, body, visibility, content_hash, 'text', NULL, NULL,
       'hash:' || visibility || '::' || content_hash, created_at, created_at
FROM documents;
DROP TABLE documents;
ALTER TABLE documents_v2 RENAME TO documents;

CREATE TABLE chunks (
    id TEXT PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    UNIQUE (document_id, position)
);
