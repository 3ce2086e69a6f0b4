ALTER TABLE orders DROP COLUMN tax_rate_bps;
ALTER TABLE orders DROP COLUMN tax_cents;
