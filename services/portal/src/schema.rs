// Diesel table definitions for portal's database (same shape on PostgreSQL and SQLite).

diesel::table! {
    staff (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        totp_secret -> Nullable<Text>,
        totp_last_step -> Nullable<BigInt>,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        skills -> Text,
    }
}

diesel::table! {
    staff_hours (staff_id, weekday) {
        staff_id -> Text,
        weekday -> Integer,
        starts -> Text,
        ends -> Text,
    }
}

diesel::table! {
    staff_recovery_codes (code_hash) {
        code_hash -> Text,
        staff_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    staff_sessions (token_hash) {
        token_hash -> Text,
        staff_id -> Text,
        stage -> Text,
        pending_totp_secret -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        ip -> Text,
        user_agent -> Text,
    }
}

diesel::table! {
    staff_invites (token_hash) {
        token_hash -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        invited_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sign_in_attempts (id) {
        id -> Text,
        email -> Text,
        ip -> Text,
        succeeded -> Bool,
        at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        staff_id -> Text,
        staff_email -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
        ip -> Text,
        outcome -> Text,
    }
}

diesel::joinable!(staff_sessions -> staff (staff_id));
diesel::joinable!(staff_recovery_codes -> staff (staff_id));
diesel::joinable!(staff_hours -> staff (staff_id));
diesel::allow_tables_to_appear_in_same_query!(
    staff,
    staff_hours,
    staff_recovery_codes,
    staff_sessions,
    staff_invites,
    sign_in_attempts,
    audit_log,
);
