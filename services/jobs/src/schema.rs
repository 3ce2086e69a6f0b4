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

diesel::table! {
    booking_settings (id) {
        id -> Integer,
        timezone -> Text,
        dropoff_days -> Text,
        slot_minutes -> Integer,
        horizon_days -> Integer,
        min_lead_minutes -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    booking_windows (code) {
        code -> Text,
        label -> Text,
        start_minute -> Integer,
        end_minute -> Integer,
        capacity -> Integer,
    }
}

diesel::table! {
    booking_blackouts (day) {
        day -> Date,
        reason -> Text,
    }
}

diesel::table! {
    window_load (day, window_code) {
        day -> Date,
        window_code -> Text,
        booked -> Integer,
    }
}

diesel::table! {
    work_orders (id) {
        id -> Text,
        client_id -> Text,
        vehicle_id -> Text,
        vehicle_label -> Text,
        status -> Text,
        services -> Text,
        problem -> Text,
        safety_flag -> Bool,
        assigned_tech -> Text,
        source -> Text,
        status_token -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    appointments (id) {
        id -> Text,
        job_id -> Text,
        client_id -> Text,
        day -> Date,
        window_code -> Text,
        start_local -> Text,
        starts_at -> Timestamp,
        status -> Text,
        reminder_queued_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    work_order_events (id) {
        id -> Text,
        job_id -> Text,
        at -> Timestamp,
        actor -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        note -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        channel -> Text,
        job_id -> Text,
        client_id -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        last_error -> Text,
        created_at -> Timestamp,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(appointments -> work_orders (job_id));
diesel::joinable!(work_order_events -> work_orders (job_id));
diesel::allow_tables_to_appear_in_same_query!(
    work_orders,
    appointments,
    work_order_events,
    estimates,
    job_lines,
    job_notes,
    job_photos
);

diesel::table! {
    job_notes (id) {
        id -> Text,
        job_id -> Text,
        at -> Timestamp,
        author -> Text,
        body -> Text,
    }
}

diesel::table! {
    job_lines (id) {
        id -> Text,
        job_id -> Text,
        kind -> Text,
        description -> Text,
        product_id -> Nullable<Text>,
        quantity -> Integer,
        hours_hundredths -> Integer,
        unit_price_cents -> BigInt,
        amount_cents -> BigInt,
        currency -> Text,
        added_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    estimates (id) {
        id -> Text,
        job_id -> Text,
        token -> Text,
        lines -> Text,
        total_cents -> BigInt,
        currency -> Text,
        status -> Text,
        sent_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Text,
    }
}

diesel::joinable!(job_notes -> work_orders (job_id));
diesel::joinable!(job_lines -> work_orders (job_id));
diesel::joinable!(estimates -> work_orders (job_id));

diesel::table! {
    job_photos (id) {
        id -> Text,
        job_id -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        caption -> Text,
        uploaded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(job_photos -> work_orders (job_id));

diesel::table! {
    kb_outbox (id) {
        id -> Text,
        job_id -> Text,
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
