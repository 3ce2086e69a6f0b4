DROP TABLE audit_log;
DROP TABLE sign_in_attempts;
DROP TABLE staff_invites;
DROP TABLE staff_sessions;
DROP TABLE staff_recovery_codes;
DROP TABLE staff;
