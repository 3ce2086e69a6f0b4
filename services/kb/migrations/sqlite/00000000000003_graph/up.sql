-- The knowledge graph (ADR 0014). An entity is one thing the shop talks about; its id is
-- `<kind>:<key>` (a record id, or for a make/model its lower-cased name). Edges come from documents
-- (structured links and mentions found in the text) and are replaced with their document.
CREATE TABLE entities (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('client', 'vehicle', 'model', 'job', 'product', 'document', 'conversation')),
    key TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT ''
);
CREATE INDEX entities_kind ON entities (kind);

CREATE TABLE edges (
    from_entity TEXT NOT NULL REFERENCES entities (id),
    to_entity TEXT NOT NULL REFERENCES entities (id),
    kind TEXT NOT NULL CHECK (kind IN ('owns', 'is_model', 'serviced_in', 'used_part', 'fits', 'mentions', 'about')),
    -- The document's source ref (`job:job_…`), or `doc:<id>` for a document without one.
    source_ref TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    PRIMARY KEY (from_entity, to_entity, kind, document_id)
);
CREATE INDEX edges_to ON edges (to_entity, kind);
CREATE INDEX edges_document ON edges (document_id);
