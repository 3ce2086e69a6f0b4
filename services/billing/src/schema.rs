// Diesel table definitions for billing's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    tax_rates (jurisdiction) {
        jurisdiction -> Text,
        rate_bps -> Integer,
    }
}

diesel::table! {
    invoice_numbers (year) {
        year -> Integer,
        next_number -> Integer,
    }
}

diesel::table! {
    invoices (id) {
        id -> Text,
        number -> Text,
        source -> Text,
        source_id -> Text,
        client_id -> Text,
        status -> Text,
        currency -> Text,
        subtotal_cents -> BigInt,
        tax_rate_bps -> Integer,
        tax_cents -> BigInt,
        total_cents -> BigInt,
        paid_cents -> BigInt,
        refunded_cents -> BigInt,
        payment_intent_id -> Nullable<Text>,
        checkout_session_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        receipt_sent_at -> Nullable<Timestamp>,
        email -> Nullable<Text>,
    }
}

diesel::table! {
    invoice_lines (id) {
        id -> Text,
        invoice_id -> Text,
        position -> Integer,
        kind -> Text,
        description -> Text,
        quantity -> Integer,
        unit_cents -> BigInt,
        amount_cents -> BigInt,
        taxable -> Bool,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        invoice_id -> Text,
        payment_intent_id -> Text,
        amount_cents -> BigInt,
        currency -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    refunds (id) {
        id -> Text,
        invoice_id -> Text,
        stripe_refund_id -> Nullable<Text>,
        amount_cents -> BigInt,
        reason -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        created -> BigInt,
        received_at -> Timestamp,
        outcome -> Text,
    }
}

diesel::joinable!(invoice_lines -> invoices (invoice_id));
diesel::joinable!(payments -> invoices (invoice_id));
diesel::joinable!(refunds -> invoices (invoice_id));
diesel::allow_tables_to_appear_in_same_query!(invoices, invoice_lines, payments, refunds);

diesel::table! {
    stripe_customers (client_id) {
        client_id -> Text,
        customer_id -> Text,
        created_at -> Timestamp,
    }
}
