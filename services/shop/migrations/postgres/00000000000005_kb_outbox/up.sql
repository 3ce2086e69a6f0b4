-- Changes kb should know about (ADR 0014, ADR 0020): one row per change to a product (created,
-- changed, fitment, listed or not) or an order (placed, paid, expired or canceled), written in the
-- change's transaction. A worker re-renders the record and puts it into kb, or deletes it there
-- (source_ref `product:<id>` / `order:<id>`, which is also this row's key).
CREATE TABLE kb_outbox (
    id TEXT PRIMARY KEY,
    source_ref TEXT NOT NULL,
    -- What happened; for logs and the backlog.
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
