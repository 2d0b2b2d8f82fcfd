-- The audit log: append-only and hash-chained.
-- hash = SHA-256(prev_hash || canonical JSON of the row without hash).
CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,             -- Unix milliseconds, UTC
    actor     TEXT NOT NULL,
    role      TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL,
    app       TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '{}',   -- JSON object
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed', 'error')),
    job_id    INTEGER,
    remote    TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_actor ON audit_events (actor, id);
CREATE INDEX audit_app ON audit_events (app, id);
CREATE INDEX audit_action ON audit_events (action, id);
CREATE INDEX audit_job ON audit_events (job_id) WHERE job_id IS NOT NULL;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
