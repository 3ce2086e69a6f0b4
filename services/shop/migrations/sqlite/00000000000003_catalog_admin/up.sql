-- Staff catalog edits and the Stripe catalog sync: what Stripe last got for each product (its
-- name and active flag, next to the existing Stripe ids and price), and how the last sync went.
ALTER TABLE products ADD COLUMN stripe_name TEXT NULL;
ALTER TABLE products ADD COLUMN stripe_active BOOLEAN NULL;
-- Why the last sync of this product failed; '' when it did not (the next sync retries).
ALTER TABLE products ADD COLUMN stripe_sync_error TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN stripe_synced_at TIMESTAMP NULL;
