// Diesel table definitions for jobs' database (same shape on PostgreSQL and SQLite).

diesel::table! {
    service_offerings (code) {
        code -> Text,
        name -> Text,
        description -> Text,
        starting_price_cents -> BigInt,
        currency -> Text,
        sort_order -> Integer,
        active -> Bool,
    }
}
