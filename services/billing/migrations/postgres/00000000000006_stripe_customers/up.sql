-- One Stripe Customer per client, made the first time they pay by card.
CREATE TABLE stripe_customers (
    client_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
