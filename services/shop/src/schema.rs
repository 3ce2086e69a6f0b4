// Diesel table definitions for shop's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    products (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        description -> Text,
        category -> Text,
        price_cents -> BigInt,
        currency -> Text,
        featured -> Bool,
        active -> Bool,
        sort_order -> Integer,
        created_at -> Timestamp,
        on_hand -> BigInt,
        reserved -> BigInt,
        image_url -> Text,
        fits_all -> Bool,
        stripe_product_id -> Nullable<Text>,
        stripe_price_id -> Nullable<Text>,
        stripe_price_cents -> Nullable<BigInt>,
    }
}

diesel::table! {
    inventory_ledger (id) {
        id -> Text,
        product_id -> Text,
        on_hand_delta -> BigInt,
        reserved_delta -> BigInt,
        reason -> Text,
        ref_id -> Text,
        note -> Text,
        actor -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    product_fitment (product_id, make_id, model_id) {
        product_id -> Text,
        make_id -> Text,
        model_id -> Text,
    }
}

diesel::table! {
    carts (id) {
        id -> Text,
        token_hash -> Text,
        client_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cart_items (cart_id, product_id) {
        cart_id -> Text,
        product_id -> Text,
        quantity -> Integer,
        seen_price_cents -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        client_id -> Nullable<Text>,
        email -> Text,
        status -> Text,
        total_cents -> BigInt,
        currency -> Text,
        checkout_session_id -> Nullable<Text>,
        checkout_url -> Text,
        status_token -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        tax_cents -> BigInt,
        tax_rate_bps -> Integer,
    }
}

diesel::table! {
    order_items (order_id, product_id) {
        order_id -> Text,
        product_id -> Text,
        name -> Text,
        quantity -> Integer,
        unit_cents -> BigInt,
        amount_cents -> BigInt,
    }
}

diesel::table! {
    /// Products and orders waiting for kb (ADR 0020); read and written through
    /// `omneuro_platform::kb_outbox::Outbox`, keyed by the document's source ref.
    kb_outbox (id) {
        id -> Text,
        source_ref -> Text,
        event -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        last_error -> Text,
        created_at -> Timestamp,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(inventory_ledger -> products (product_id));
diesel::joinable!(product_fitment -> products (product_id));
diesel::joinable!(cart_items -> carts (cart_id));
diesel::joinable!(cart_items -> products (product_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(order_items -> products (product_id));
diesel::allow_tables_to_appear_in_same_query!(
    products,
    inventory_ledger,
    product_fitment,
    carts,
    cart_items,
    orders,
    order_items
);

/// The same `products` table as staff catalog edits and the Stripe sync see it: every column,
/// including those of migration 3 (`stripe_name`, `stripe_active`, `stripe_sync_error`,
/// `stripe_synced_at`), which the shopper-facing `products` definition above leaves out.
pub mod catalog {
    diesel::table! {
        #[sql_name = "products"]
        catalog_products (id) {
            id -> Text,
            slug -> Text,
            name -> Text,
            description -> Text,
            category -> Text,
            price_cents -> BigInt,
            currency -> Text,
            featured -> Bool,
            active -> Bool,
            sort_order -> Integer,
            created_at -> Timestamp,
            on_hand -> BigInt,
            reserved -> BigInt,
            image_url -> Text,
            fits_all -> Bool,
            stripe_product_id -> Nullable<Text>,
            stripe_price_id -> Nullable<Text>,
            stripe_price_cents -> Nullable<BigInt>,
            stripe_name -> Nullable<Text>,
            stripe_active -> Nullable<Bool>,
            stripe_sync_error -> Text,
            stripe_synced_at -> Nullable<Timestamp>,
        }
    }
}
