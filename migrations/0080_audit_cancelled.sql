-- A cancelled job is audited as `cancelled`, not `failed`: the outcome CHECK
-- of 0002 gains that word. SQLite cannot alter a CHECK, so the table is
-- rebuilt: every row is copied as stored (the hash of each row covers its
-- fields, `outcome` as the string it was written with, so the chain verifies
-- unchanged), then its indexes and append-only triggers are made again.
-- Runs inside the migration's transaction: all of it or none.
CREATE TABLE audit_events_new (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,             -- Unix milliseconds, UTC
    actor     TEXT NOT NULL,
    role      TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL,
    app       TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '{}',   -- JSON object
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed', 'cancelled', 'error')),
    job_id    INTEGER,
    remote    TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_events_new (id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
    SELECT id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash
    FROM audit_events ORDER BY id;
-- Dropping the table drops its triggers and indexes; a DROP fires no
-- DELETE trigger.
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;

CREATE INDEX audit_actor ON audit_events (actor, id);
CREATE INDEX audit_app ON audit_events (app, id);
CREATE INDEX audit_action ON audit_events (action, id);
CREATE INDEX audit_job ON audit_events (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX audit_at ON audit_events (at);
CREATE INDEX audit_outcome ON audit_events (outcome, id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
