DROP TABLE stripe_events;
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE invoice_numbers;
