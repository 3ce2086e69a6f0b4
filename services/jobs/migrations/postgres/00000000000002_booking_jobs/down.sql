DROP TABLE outbox;
DROP TABLE work_order_events;
DROP TABLE appointments;
DROP TABLE work_orders;
DROP TABLE window_load;
DROP TABLE booking_blackouts;
DROP TABLE booking_windows;
DROP TABLE booking_settings;
