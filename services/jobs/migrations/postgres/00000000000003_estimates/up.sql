-- The bench side of a job: diagnostics notes, labor and parts lines, estimates the client decides on.
CREATE TABLE job_notes (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES work_orders (id),
    at TIMESTAMP NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX job_notes_job ON job_notes (job_id, at);

-- Labor: hours in hundredths × rate. Parts: a shop product at its server-side price when added.
CREATE TABLE job_lines (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES work_orders (id),
    kind TEXT NOT NULL CHECK (kind IN ('labor', 'part')),
    description TEXT NOT NULL,
    product_id TEXT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    hours_hundredths INTEGER NOT NULL DEFAULT 0,
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency TEXT NOT NULL DEFAULT 'USD',
    added_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX job_lines_job ON job_lines (job_id, created_at);

-- An estimate is a snapshot of the lines when sent; the client approves or declines it once.
CREATE TABLE estimates (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES work_orders (id),
    token TEXT NOT NULL UNIQUE,
    -- JSON array of the lines as sent.
    lines TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    status TEXT NOT NULL CHECK (status IN ('sent', 'approved', 'declined', 'superseded')),
    sent_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP NULL,
    decided_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX estimates_job ON estimates (job_id, sent_at);
