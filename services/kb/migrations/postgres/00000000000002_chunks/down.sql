DROP TABLE chunks;
ALTER TABLE documents DROP CONSTRAINT documents_dedupe_key_key;
ALTER TABLE documents DROP COLUMN format, DROP COLUMN owner_client, DROP COLUMN source_ref,
    DROP COLUMN dedupe_key, DROP COLUMN updated_at;
ALTER TABLE documents ADD CONSTRAINT documents_content_hash_key UNIQUE (content_hash);
