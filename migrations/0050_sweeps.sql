-- Sweeps (DESIGN.md "Sweeps"): one row per sweep job, dry run or real.
-- What it listed is what a later real run compares against; what it did is
-- what the app page shows. Times are Unix milliseconds (UTC).
CREATE TABLE sweep_runs (
    job_id        INTEGER PRIMARY KEY REFERENCES jobs (id),
    app           TEXT NOT NULL,
    sweep         TEXT NOT NULL,
    dry_run       INTEGER NOT NULL,
    listed        TEXT,                      -- JSON array: what it found to remove or create
    done          TEXT,                      -- JSON array: what it removed or created
    changed       TEXT,                      -- how the world differed from the dry run it followed
    scheduled_for INTEGER                    -- the schedule's minute, for scheduled runs
);
CREATE INDEX sweep_runs_sweep ON sweep_runs (app, sweep, job_id DESC);

-- The scheduler's memory: the last minute it handled per scheduled sweep,
-- so a run missed while opsdeck was down is noticed (and run once) at start.
CREATE TABLE sweep_schedule (
    app       TEXT NOT NULL,
    sweep     TEXT NOT NULL,
    last_fire INTEGER NOT NULL,
    PRIMARY KEY (app, sweep)
);
