-- Stock as counters guarded in SQL (never oversold) with a ledger that explains every change;
-- fitment; Stripe ids; carts and orders.
ALTER TABLE products ADD COLUMN on_hand BIGINT NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN image_url TEXT NOT NULL DEFAULT '';
ALTER TABLE products ADD COLUMN fits_all BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN stripe_product_id TEXT NULL;
ALTER TABLE products ADD COLUMN stripe_price_id TEXT NULL;
ALTER TABLE products ADD COLUMN stripe_price_cents BIGINT NULL;
UPDATE products SET on_hand = stock;

CREATE TABLE inventory_ledger (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (id),
    -- Change to on_hand and to reserved (one of them is usually 0).
    on_hand_delta BIGINT NOT NULL,
    reserved_delta BIGINT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('opening', 'restock', 'adjustment', 'reserve', 'release', 'sale', 'job_part')),
    ref_id TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX inventory_ledger_product ON inventory_ledger (product_id, created_at);
INSERT INTO inventory_ledger (id, product_id, on_hand_delta, reserved_delta, reason, actor, created_at)
    SELECT 'led_open_' || id, id, stock, 0, 'opening', 'system:migration', created_at FROM products WHERE stock <> 0;
-- The counters and the ledger replace the single stock number.
ALTER TABLE products DROP COLUMN stock;

-- A product fits a catalog make (any model) or one model; fits_all marks universal parts.
CREATE TABLE product_fitment (
    product_id TEXT NOT NULL REFERENCES products (id),
    make_id TEXT NOT NULL,
    model_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (product_id, make_id, model_id)
);

CREATE TABLE carts (
    id TEXT PRIMARY KEY,
    -- SHA-256 of the cart cookie.
    token_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE cart_items (
    cart_id TEXT NOT NULL REFERENCES carts (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    -- The price the shopper last saw, to tell them when it changed.
    seen_price_cents BIGINT NOT NULL,
    PRIMARY KEY (cart_id, product_id)
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    client_id TEXT NULL,
    email TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'expired', 'canceled', 'fulfilled')),
    total_cents BIGINT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    checkout_session_id TEXT NULL UNIQUE,
    checkout_url TEXT NOT NULL DEFAULT '',
    -- Token for the no-login order status page.
    status_token TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_client ON orders (client_id, created_at);

CREATE TABLE order_items (
    order_id TEXT NOT NULL REFERENCES orders (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    name TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_cents BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
