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
diesel::allow_tables_to_appear_in_same_query!(vehicle_makes, vehicle_models);
