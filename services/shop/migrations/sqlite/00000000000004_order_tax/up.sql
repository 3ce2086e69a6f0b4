-- Maryland sales tax on shop orders: the rate (basis points, billing's US-MD rate at checkout)
-- and the amount; total_cents includes the tax from now on. Earlier orders carried no tax.
ALTER TABLE orders ADD COLUMN tax_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN tax_rate_bps INTEGER NOT NULL DEFAULT 0;
