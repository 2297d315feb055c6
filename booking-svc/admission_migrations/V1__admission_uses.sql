-- How many booking writes each admission grant has been used for (R11), so every booking-svc
-- replica counts the same uses. One row per grant id; rows outlive their grant by an hour and
-- are then deleted. Kept apart from the booking schema (own history table).
CREATE TABLE admission_uses (
    grant_id   TEXT        PRIMARY KEY,
    used       INTEGER     NOT NULL,
    -- Set by the write that succeeded: its idempotency key, so a retry of that same write still
    -- passes on the spent grant and is answered with the booking it made.
    spent_by   TEXT,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admission_uses_expiry ON admission_uses (expires_at);
