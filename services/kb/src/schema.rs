// Diesel table definitions for kb's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    documents (id) {
        id -> Text,
        title -> Text,
        body -> Text,
        visibility -> Text,
        content_hash -> Text,
        format -> Text,
        owner_client -> Nullable<Text>,
        source_ref -> Nullable<Text>,
        dedupe_key -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    chunks (id) {
        id -> Text,
        document_id -> Text,
        position -> Integer,
        heading -> Text,
        text -> Text,
        start_char -> Integer,
        end_char -> Integer,
    }
}

diesel::table! {
    entities (id) {
        id -> Text,
        kind -> Text,
        key -> Text,
        label -> Text,
    }
}

diesel::table! {
    edges (from_entity, to_entity, kind, document_id) {
        from_entity -> Text,
        to_entity -> Text,
        kind -> Text,
        source_ref -> Text,
        document_id -> Text,
    }
}

diesel::table! {
    chunk_vectors (chunk_id) {
        chunk_id -> Text,
        model -> Text,
        dim -> Integer,
        vector -> Binary,
    }
}

diesel::joinable!(chunks -> documents (document_id));
diesel::joinable!(chunk_vectors -> chunks (chunk_id));
diesel::joinable!(edges -> documents (document_id));
diesel::allow_tables_to_appear_in_same_query!(documents, chunks, chunk_vectors, entities, edges);
