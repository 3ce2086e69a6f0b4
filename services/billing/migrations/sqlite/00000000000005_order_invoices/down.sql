DROP INDEX invoices_order_once;
ALTER TABLE invoices DROP COLUMN email;
