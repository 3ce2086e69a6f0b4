// Diesel table definitions for repairbot's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    conversations (id) {
        id -> Text,
        channel -> Text,
        client_id -> Nullable<Text>,
        started_at -> Timestamp,
    }
}
