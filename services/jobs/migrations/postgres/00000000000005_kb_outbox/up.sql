-- Changes kb should know about (ADR 0014): one row per change to a job, written in the change's
-- transaction; a worker re-renders the job and puts it into kb (source_ref `job:<id>`).
CREATE TABLE kb_outbox (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    -- What happened (created, status_changed, note, line_added, line_removed); for logs and the backlog.
    event TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A worker that claimed the row owns it until then (a crashed worker's claim runs out).
    lease_until TIMESTAMP NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    done_at TIMESTAMP NULL
);
CREATE INDEX kb_outbox_due ON kb_outbox (state, next_attempt_at);
