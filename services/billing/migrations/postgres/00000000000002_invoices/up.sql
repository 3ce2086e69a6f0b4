-- Invoices with sequential numbers, their payments and refunds, and the Stripe event log.
CREATE TABLE invoice_numbers (
    year INTEGER PRIMARY KEY,
    next_number INTEGER NOT NULL
);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL CHECK (source IN ('job', 'order')),
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
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX invoices_client ON invoices (client_id, created_at);
CREATE INDEX invoices_source ON invoices (source, source_id);

CREATE TABLE invoice_lines (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('labor', 'part', 'fee')),
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_cents BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    taxable BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, position);

-- One row per Stripe payment (PaymentIntent): the unique key makes a replayed event a no-op.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    payment_intent_id TEXT NOT NULL UNIQUE,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    stripe_refund_id TEXT NULL UNIQUE,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Every Stripe event id seen, once: duplicates are acknowledged and change nothing.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL
);
