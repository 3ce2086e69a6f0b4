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
        stock -> BigInt,
        featured -> Bool,
        active -> Bool,
        sort_order -> Integer,
        created_at -> Timestamp,
    }
}
