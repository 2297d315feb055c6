-- One audit trail per service, even when services share a database (booking-svc and
-- scheduling-svc share DATABASE_URL): every row names its trail (`auth`, `booking`,
-- `scheduling`), and seq, the hash chain and the append lock are per trail. The hash of a row of
-- a named trail covers the trail's name (platform/src/audit.rs), so a row moved to another trail
-- no longer matches its hash there.
--
-- Rows written before trails had names: they cannot be told apart by service (in a shared
-- database they are one chain of both services' entries), so none is credited to a service.
-- They keep their seq, their hashes and their chain as the closed trail `legacy`, hashed as they
-- were written (without a trail name), which `vaxbook audit verify --log legacy` still checks;
-- no service appends to it. Each service's named trail starts at seq 1 after this migration.
-- The default only fills the existing rows: it is dropped, so every new row must name its trail.
ALTER TABLE audit_log ADD COLUMN trail TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE audit_log ALTER COLUMN trail DROP DEFAULT;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_trail_name
    CHECK (trail ~ '^[a-z][a-z0-9-]{0,31}$');

ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (trail, seq);

DROP INDEX IF EXISTS audit_log_person;
DROP INDEX IF EXISTS audit_log_actor;
DROP INDEX IF EXISTS audit_log_at;
CREATE INDEX audit_log_person ON audit_log (trail, person_key, seq);
CREATE INDEX audit_log_actor ON audit_log (trail, actor, seq);
CREATE INDEX audit_log_at ON audit_log (trail, at);

-- The append-only triggers of V1 stay as they are: UPDATE (of the trail column too), DELETE and
-- TRUNCATE are refused for every row of every trail.
