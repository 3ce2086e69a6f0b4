-- Deposit invoices for custom battery packs: an invoice may also come from a quote.
--
-- SQLite cannot alter a CHECK constraint, so invoices is rebuilt the standard way (new table, copy,
-- drop, rename). Its children (invoice_lines, payments, refunds) are rebuilt alongside, pointing at
-- the new table: dropping a parent that still has children fails the foreign keys (the migration
-- runs in a transaction with foreign_keys on), and renaming invoices_new to invoices rewrites their
-- REFERENCES to invoices. Columns, UNIQUE and REFERENCES are as before, and so are the indexes.
CREATE TABLE invoices_new (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL CHECK (source IN ('job', 'order', 'quote')),
    source_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'partially_refunded', 'refunded', 'void')),
    currency TEXT NOT NULL DEFAULT 'USD',
    subtotal_cents BIGINT NOT NULL,
    tax_rate_bps INTEGER NOT NULL,
    tax_cents BIGINT NOT NULL,
    total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
    paid_cents BIGINT NOT NULL DEFAULT 0,
    refunded_cents BIGINT NOT NULL DEFAULT 0,
    payment_intent_id TEXT NULL UNIQUE,
    checkout_session_id TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    receipt_sent_at TIMESTAMP NULL
);
INSERT INTO invoices_new (id, number, source, source_id, client_id, status, currency,
    subtotal_cents, tax_rate_bps, tax_cents, total_cents, paid_cents, refunded_cents,
    payment_intent_id, checkout_session_id, created_at, updated_at, receipt_sent_at)
SELECT id, number, source, source_id, client_id, status, currency,
    subtotal_cents, tax_rate_bps, tax_cents, total_cents, paid_cents, refunded_cents,
    payment_intent_id, checkout_session_id, created_at, updated_at, receipt_sent_at
FROM invoices;

CREATE TABLE invoice_lines_new (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices_new (id),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('labor', 'part', 'fee')),
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_cents BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    taxable BOOLEAN NOT NULL DEFAULT 1
);
INSERT INTO invoice_lines_new (id, invoice_id, position, kind, description, quantity, unit_cents,
    amount_cents, taxable)
SELECT id, invoice_id, position, kind, description, quantity, unit_cents, amount_cents, taxable
FROM invoice_lines;

CREATE TABLE payments_new (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices_new (id),
    payment_intent_id TEXT NOT NULL UNIQUE,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO payments_new (id, invoice_id, payment_intent_id, amount_cents, currency, created_at)
SELECT id, invoice_id, payment_intent_id, amount_cents, currency, created_at FROM payments;

CREATE TABLE refunds_new (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices_new (id),
    stripe_refund_id TEXT NULL UNIQUE,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO refunds_new (id, invoice_id, stripe_refund_id, amount_cents, reason, created_by,
    created_at)
SELECT id, invoice_id, stripe_refund_id, amount_cents, reason, created_by, created_at FROM refunds;

-- Children first: then nothing references the old invoices when it goes.
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE invoice_lines;
DROP TABLE invoices;

ALTER TABLE invoices_new RENAME TO invoices;
ALTER TABLE invoice_lines_new RENAME TO invoice_lines;
ALTER TABLE payments_new RENAME TO payments;
ALTER TABLE refunds_new RENAME TO refunds;

CREATE INDEX invoices_client ON invoices (client_id, created_at);
CREATE INDEX invoices_source ON invoices (source, source_id);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, position);
