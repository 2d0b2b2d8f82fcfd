-- Jobs: one row per button press (or API call, webhook, schedule).
-- Times are Unix milliseconds (UTC).
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    app          TEXT NOT NULL,
    kind         TEXT NOT NULL,              -- action | deploy | rollback | rotate | sweep
    target       TEXT NOT NULL DEFAULT '',   -- action/secret/sweep name, ref, release
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    state        TEXT NOT NULL,              -- queued | running | succeeded | failed | cancelled | timed_out | interrupted
    mutating     INTEGER NOT NULL DEFAULT 1,
    plan         TEXT NOT NULL,              -- JSON Plan, so queued jobs survive a restart
    summary      TEXT,                       -- one sentence on how it ended
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    cancelled_by TEXT
);
CREATE INDEX jobs_app ON jobs (app, id DESC);
CREATE INDEX jobs_state ON jobs (state) WHERE state IN ('queued', 'running');

CREATE TABLE job_steps (
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    title       TEXT NOT NULL,
    command     TEXT NOT NULL DEFAULT '',    -- the exact command line, secrets redacted
    state       TEXT NOT NULL DEFAULT 'pending',
    started_at  INTEGER,
    finished_at INTEGER,
    exit_code   INTEGER,
    PRIMARY KEY (job_id, idx)
);

-- Output in chunks of consecutive lines (line numbers first..last, 1-based),
-- written in batches so a million-line build does not mean a million rows.
CREATE TABLE job_output (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    first_line INTEGER NOT NULL,
    last_line  INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (job_id, first_line)
);
