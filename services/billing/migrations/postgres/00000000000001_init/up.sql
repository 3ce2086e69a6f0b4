-- Sales-tax rates invoices apply, by jurisdiction, in basis points (600 = 6.00 %).
CREATE TABLE tax_rates (
    jurisdiction TEXT PRIMARY KEY,
    rate_bps INTEGER NOT NULL CHECK (rate_bps >= 0 AND rate_bps <= 10000)
);

-- Maryland sales and use tax: 6 %.
INSERT INTO tax_rates (jurisdiction, rate_bps) VALUES ('US-MD', 600);
