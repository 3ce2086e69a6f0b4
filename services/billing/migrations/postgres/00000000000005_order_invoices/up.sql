-- Every paid shop order gets an invoice (source 'order', source_id = the order id). An anonymous
-- buyer has no client, so the receipt goes to the email the order carries.
ALTER TABLE invoices ADD COLUMN email TEXT NULL;
-- One invoice per order, even when two deliveries of its payment race.
CREATE UNIQUE INDEX invoices_order_once ON invoices (source_id) WHERE source = 'order';
