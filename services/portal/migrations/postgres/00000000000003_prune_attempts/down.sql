DROP INDEX sign_in_attempts_at;
