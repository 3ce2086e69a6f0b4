// Diesel table definitions for kb's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    documents (id) {
        id -> Text,
        title -> Text,
        body -> Text,
        visibility -> Text,
        content_hash -> Text,
        created_at -> Timestamp,
    }
}
