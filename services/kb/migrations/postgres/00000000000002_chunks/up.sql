-- Documents get a format, an owner client, a source ref (putting the same ref again replaces the
-- document) and one de-duplication key instead of a unique body hash: `src:<ref>` for sourced
-- documents, `hash:<visibility>:<owner>:<sha256>` for the rest (the same body is stored once per
-- audience, never shared across two clients). Chunks are stored here; the search index is derived.
ALTER TABLE documents DROP CONSTRAINT documents_content_hash_key;
ALTER TABLE documents
    ADD COLUMN format TEXT NOT NULL DEFAULT 'text' CHECK (format IN ('text', 'markdown', 'html', 'pdf')),
    ADD COLUMN owner_client TEXT,
    ADD COLUMN source_ref TEXT UNIQUE,
    ADD COLUMN dedupe_key TEXT,
    ADD COLUMN updated_at TIMESTAMP;
UPDATE documents SET dedupe_key = 'hash:' || visibility || '::' || content_hash, updated_at = created_at;
ALTER TABLE documents ALTER COLUMN dedupe_key SET NOT NULL, ALTER COLUMN updated_at SET NOT NULL,
    ADD CONSTRAINT documents_dedupe_key_key UNIQUE (dedupe_key);

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
