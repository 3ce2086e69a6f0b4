// Diesel table definitions for billing's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    tax_rates (jurisdiction) {
        jurisdiction -> Text,
        rate_bps -> Integer,
    }
}
