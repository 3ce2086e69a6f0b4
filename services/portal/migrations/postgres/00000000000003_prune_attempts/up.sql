-- Old sign-in attempts are pruned (they only matter for throttling and lockout, minutes to hours).
CREATE INDEX sign_in_attempts_at ON sign_in_attempts (at);
