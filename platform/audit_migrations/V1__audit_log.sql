-- The audit trail (R9): append-only and hash-chained. Each row's hash is SHA-256 over the previous
-- row's hash and this row's canonical form (platform/src/audit.rs), so a rewritten or deleted row
-- breaks the chain at that row. The table refuses UPDATE and DELETE for every role through a
-- trigger, and they are revoked from PUBLIC as well: the only way in is INSERT.
CREATE TABLE IF NOT EXISTS audit_log (
    seq          BIGINT PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    organisation TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    person_key   TEXT,
    outcome      TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_person ON audit_log (person_key, seq);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, seq);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
