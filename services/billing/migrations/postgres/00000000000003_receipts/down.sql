ALTER TABLE invoices DROP COLUMN receipt_sent_at;
