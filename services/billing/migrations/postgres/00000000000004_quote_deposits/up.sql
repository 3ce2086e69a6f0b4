-- Deposit invoices for custom battery packs: an invoice may also come from a quote.
-- (The column's CHECK was created inline, so PostgreSQL named it invoices_source_check.)
ALTER TABLE invoices DROP CONSTRAINT invoices_source_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_source_check CHECK (source IN ('job', 'order', 'quote'));
