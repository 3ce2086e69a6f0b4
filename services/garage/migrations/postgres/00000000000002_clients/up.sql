-- Clients (signed in by magic link), their sessions, and their vehicles.
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    -- Lower-cased; the sign-in identity.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    -- E.164 or ''.
    phone TEXT NOT NULL DEFAULT '',
    contact_preference TEXT NOT NULL DEFAULT 'email' CHECK (contact_preference IN ('email', 'sms')),
    email_consent BOOLEAN NOT NULL DEFAULT TRUE,
    sms_consent BOOLEAN NOT NULL DEFAULT FALSE,
    sms_opted_out_at TIMESTAMP NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX clients_phone ON clients (phone);

-- Magic links: only the SHA-256 of the token is kept. Rows double as the rate-limit log.
CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    requested_ip TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    consumed_at TIMESTAMP NULL
);
CREATE INDEX sign_in_links_email ON sign_in_links (email, created_at);
CREATE INDEX sign_in_links_ip ON sign_in_links (requested_ip, created_at);

CREATE TABLE client_sessions (
    token_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    -- Absolute end; the idle limit is checked against last_seen_at.
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX client_sessions_client ON client_sessions (client_id);

CREATE TABLE vehicles (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    category TEXT NOT NULL CHECK (category IN ('electric_unicycle', 'e_bike', 'e_scooter', 'e_skateboard', 'other')),
    -- A catalog make (and model), or free text: make_id/other_make and model_id/other_model.
    make_id TEXT NULL REFERENCES vehicle_makes (id),
    model_id TEXT NULL REFERENCES vehicle_models (id),
    other_make TEXT NOT NULL DEFAULT '',
    other_model TEXT NOT NULL DEFAULT '',
    nickname TEXT NOT NULL DEFAULT '',
    battery_format TEXT NOT NULL DEFAULT 'unknown' CHECK (battery_format IN ('18650', '21700', 'lfp', 'other', 'unknown')),
    -- Volts (84, 100, 126, 134, …); 0 = unknown.
    voltage_class INTEGER NOT NULL DEFAULT 0,
    battery_serial TEXT NOT NULL DEFAULT '',
    motor_serial TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    archived_at TIMESTAMP NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (make_id IS NOT NULL OR other_make <> '')
);
CREATE INDEX vehicles_client ON vehicles (client_id);
