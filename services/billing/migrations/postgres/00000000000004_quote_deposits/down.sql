-- Fails while quote invoices exist (money records are never dropped by a migration).
ALTER TABLE invoices DROP CONSTRAINT invoices_source_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_source_check CHECK (source IN ('job', 'order'));
