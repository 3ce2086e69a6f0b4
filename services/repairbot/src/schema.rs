// Diesel table definitions for repairbot's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    conversations (id) {
        id -> Text,
        channel -> Text,
        client_id -> Nullable<Text>,
        started_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        conversation_id -> Text,
        seq -> Integer,
        role -> Text,
        content -> Text,
        mode -> Nullable<Text>,
        tool_calls -> Text,
        sources -> Text,
        actor -> Text,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::joinable!(messages -> conversations (conversation_id));
diesel::allow_tables_to_appear_in_same_query!(conversations, messages);

diesel::table! {
    telnyx_events (id) {
        id -> Text,
        event_type -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    booking_proposals (conversation_id) {
        conversation_id -> Text,
        client_id -> Text,
        vehicle_id -> Text,
        vehicle_label -> Text,
        services -> Text,
        problem -> Text,
        slot_date -> Text,
        window_code -> Text,
        slot_start -> Text,
        summary -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sms_texts (id) {
        id -> Text,
        event_id -> Text,
        phone -> Text,
        body -> Text,
        state -> Text,
        conversation_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        user_message_id -> Nullable<Text>,
        reply -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        last_error -> Text,
        telnyx_message_id -> Nullable<Text>,
        received_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sms_opt_outs (phone) {
        phone -> Text,
        opted_out_at -> Timestamp,
    }
}
