-- The release log (DESIGN.md "Deploy and rollback"): one row per deploy or
-- rollback request. Whether a release went live is its job's state; it is
-- `bad` when its job's recovery steps ran (it was rolled back) or a later
-- rollback moved away from it.
-- Times are Unix milliseconds (UTC).
CREATE TABLE releases (
    id            INTEGER PRIMARY KEY,
    app           TEXT NOT NULL,
    job_id        INTEGER NOT NULL UNIQUE REFERENCES jobs (id),
    kind          TEXT NOT NULL,             -- deploy | rollback
    ref           TEXT NOT NULL,             -- as requested: branch, tag or commit
    sha           TEXT NOT NULL,             -- the full SHA it resolved to
    actor         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    recovery_step INTEGER NOT NULL,          -- index of the job's first recovery step
    replaces      INTEGER REFERENCES releases (id)  -- rollback: the release it moved away from
);
CREATE INDEX releases_app ON releases (app, id DESC);
