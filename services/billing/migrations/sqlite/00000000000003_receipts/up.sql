-- When the paid receipt was emailed (once per invoice).
ALTER TABLE invoices ADD COLUMN receipt_sent_at TIMESTAMP NULL;
