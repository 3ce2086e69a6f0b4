-- Photos of a job taken at the bench. The bytes live in the photo store ([photos] dir), under the
-- photo's id; this row is written only once the file is on disk, and removed before the file.
CREATE TABLE job_photos (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES work_orders (id),
    -- Decided by jobs from the file's first bytes: image/jpeg, image/png or image/webp.
    content_type TEXT NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size_bytes BIGINT NOT NULL CHECK (size_bytes > 0),
    -- Hex SHA-256 of the bytes.
    sha256 TEXT NOT NULL,
    caption TEXT NOT NULL DEFAULT '',
    -- The staff member's identity, "staff:stf_…:tech".
    uploaded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX job_photos_job ON job_photos (job_id, created_at);
