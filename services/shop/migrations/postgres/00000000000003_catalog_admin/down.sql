ALTER TABLE products DROP COLUMN stripe_synced_at;
ALTER TABLE products DROP COLUMN stripe_sync_error;
ALTER TABLE products DROP COLUMN stripe_active;
ALTER TABLE products DROP COLUMN stripe_name;
