-- Dense vectors of chunks, one per chunk and embedding model (little-endian f32 bytes). Derived
-- data, like the search index: a changed chunk loses its vector and the embedding worker makes a
-- new one.
CREATE TABLE chunk_vectors (
    chunk_id TEXT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL CHECK (dim > 0),
    vector BYTEA NOT NULL
);
CREATE INDEX chunk_vectors_model ON chunk_vectors (model, chunk_id);
