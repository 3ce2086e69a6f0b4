-- Staff accounts (ADR 0011): people, their sessions, invites, the sign-in attempt log that
-- drives throttling and lockout, and the audit log of staff actions.
CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    -- Lower-cased; the sign-in identity.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'tech', 'front_desk')),
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    -- Base32 TOTP secret once the second factor is set up; the last accepted step refuses replays.
    totp_secret TEXT NULL,
    totp_last_step BIGINT NULL,
    disabled_at TIMESTAMP NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Single-use recovery codes: only hashes; a used code's row is deleted.
CREATE TABLE staff_recovery_codes (
    code_hash TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX staff_recovery_codes_staff ON staff_recovery_codes (staff_id);

-- Sessions: only the SHA-256 of the cookie value. A session is half-open (password checked,
-- second factor or its set-up still due) until `stage` is 'signed_in'; completing it replaces
-- the row with a new token, so a token known before sign-in is never a signed-in session.
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    stage TEXT NOT NULL CHECK (stage IN ('second_factor', 'enroll', 'signed_in')),
    -- A TOTP secret being set up, shown to this browser only until confirmed.
    pending_totp_secret TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    -- Absolute end; the idle limit is checked against last_seen_at.
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- One-time invite links sent by the owner: only the token's hash.
CREATE TABLE staff_invites (
    token_hash TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'tech', 'front_desk')),
    invited_by TEXT NOT NULL REFERENCES staff (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP NULL,
    revoked_at TIMESTAMP NULL
);
CREATE INDEX staff_invites_email ON staff_invites (email);

-- Every password and second-factor check, kept for throttling and lockout (by address and by IP).
CREATE TABLE sign_in_attempts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    ip TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX sign_in_attempts_email ON sign_in_attempts (email, at);
CREATE INDEX sign_in_attempts_ip ON sign_in_attempts (ip, at);

-- Who did what, when, from where. Rows are only ever added.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    staff_id TEXT NOT NULL DEFAULT '',
    staff_email TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
