// Diesel table definitions for garage's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    vehicle_makes (id) {
        id -> Text,
        name -> Text,
        sort_order -> Integer,
    }
}

diesel::table! {
    vehicle_models (id) {
        id -> Text,
        make_id -> Text,
        name -> Text,
        category -> Text,
        sort_order -> Integer,
    }
}

diesel::joinable!(vehicle_models -> vehicle_makes (make_id));

diesel::table! {
    clients (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        phone -> Text,
        contact_preference -> Text,
        email_consent -> Bool,
        sms_consent -> Bool,
        sms_opted_out_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sign_in_links (token_hash) {
        token_hash -> Text,
        email -> Text,
        requested_ip -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    client_sessions (token_hash) {
        token_hash -> Text,
        client_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        ip -> Text,
        user_agent -> Text,
    }
}

diesel::table! {
    vehicles (id) {
        id -> Text,
        client_id -> Text,
        category -> Text,
        make_id -> Nullable<Text>,
        model_id -> Nullable<Text>,
        other_make -> Text,
        other_model -> Text,
        nickname -> Text,
        battery_format -> Text,
        voltage_class -> Integer,
        battery_serial -> Text,
        motor_serial -> Text,
        notes -> Text,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(client_sessions -> clients (client_id));
diesel::joinable!(vehicles -> clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(
    clients,
    client_sessions,
    vehicles,
    vehicle_makes,
    vehicle_models
);
