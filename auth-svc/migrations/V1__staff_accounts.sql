-- Staff accounts of the call-center channel (R9): agents, supervisors, operators.
CREATE TABLE IF NOT EXISTS staff_accounts (
    id              UUID PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    organisation    TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'operator')),
    password_hash   TEXT NOT NULL,
    totp_secret     TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL
);
