-- Booking rules are data (editable from the portal): one settings row, the windows, blackout days.
CREATE TABLE booking_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    timezone TEXT NOT NULL,
    -- Comma-separated: sun,tue,thu,sat
    dropoff_days TEXT NOT NULL,
    slot_minutes INTEGER NOT NULL,
    horizon_days INTEGER NOT NULL,
    min_lead_minutes INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO booking_settings VALUES (1, 'America/New_York', 'sun,tue,thu,sat', 60, 14, 60, CURRENT_TIMESTAMP);

CREATE TABLE booking_windows (
    code TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    -- Minutes after local midnight.
    start_minute INTEGER NOT NULL,
    end_minute INTEGER NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity >= 0)
);
INSERT INTO booking_windows VALUES
  ('morning', 'Morning', 600, 720, 3),
  ('afternoon', 'Afternoon', 720, 900, 3),
  ('evening', 'Evening', 900, 1080, 3);

CREATE TABLE booking_blackouts (
    day DATE PRIMARY KEY,
    reason TEXT NOT NULL DEFAULT ''
);

-- How many bookings each window of each day holds; the guarded increment is the capacity check.
CREATE TABLE window_load (
    day DATE NOT NULL,
    window_code TEXT NOT NULL,
    booked INTEGER NOT NULL DEFAULT 0 CHECK (booked >= 0),
    PRIMARY KEY (day, window_code)
);

CREATE TABLE work_orders (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    -- Snapshot of the vehicle's label when the job was opened.
    vehicle_label TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('intake', 'diagnosing', 'awaiting_approval', 'awaiting_parts', 'in_progress', 'awaiting_payment', 'ready', 'delivered', 'canceled')),
    -- Comma-separated service codes.
    services TEXT NOT NULL,
    problem TEXT NOT NULL DEFAULT '',
    safety_flag BOOLEAN NOT NULL DEFAULT 0,
    assigned_tech TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL CHECK (source IN ('booking', 'walk_in')),
    -- The no-login status link; NULL once revoked.
    status_token TEXT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX work_orders_client ON work_orders (client_id, created_at);
CREATE INDEX work_orders_status ON work_orders (status);

CREATE TABLE appointments (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES work_orders (id),
    client_id TEXT NOT NULL,
    day DATE NOT NULL,
    window_code TEXT NOT NULL,
    -- Local wall time of the slot (HH:MM) and the same instant in UTC.
    start_local TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('booked', 'canceled')),
    reminder_queued_at TIMESTAMP NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX appointments_day ON appointments (day, window_code, status);
CREATE INDEX appointments_client ON appointments (client_id);
CREATE INDEX appointments_job ON appointments (job_id);

-- Every status move: who, when, from, to, why.
CREATE TABLE work_order_events (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES work_orders (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT NULL,
    to_status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX work_order_events_job ON work_order_events (job_id, at);

-- Notifications, written in the same transaction as the change they announce; a worker delivers.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    job_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- Facts the message is rendered from (JSON).
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'skipped', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A worker that claimed the row owns it until then (a crashed worker's claim runs out).
    lease_until TIMESTAMP NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    done_at TIMESTAMP NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
