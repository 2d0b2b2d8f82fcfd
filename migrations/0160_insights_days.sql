-- Insights' job durations (p50/p95 per kind), kept per kind, app and UTC
-- day as they happen. Read from `jobs`, a 90-day range of 100,000 jobs
-- was 100,000 index entries per page view (35 ms of the page's 50 ms
-- budget, benches/insights.rs); from here it is a few hundred rows.
--
-- `durations` packs the milliseconds each job ran ("12,7,300"), as the
-- insights read them (`group_concat`). A trigger keeps it, so every way a
-- job ends — the runner, a restart's interruption, a cancel — is counted
-- once, in the transaction that ends it. Jobs are only ever inserted
-- unended (queued or awaiting approval), and never deleted.
CREATE TABLE job_durations (
    kind      TEXT NOT NULL,
    app       TEXT NOT NULL,
    day       INTEGER NOT NULL,   -- created_at / 86400000: the UTC day it was requested
    durations TEXT NOT NULL,
    PRIMARY KEY (kind, app, day)
) WITHOUT ROWID;

INSERT INTO job_durations (kind, app, day, durations)
    SELECT kind, app, created_at / 86400000, group_concat(max(finished_at - started_at, 0))
    FROM jobs
    WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
    GROUP BY 1, 2, 3;

CREATE TRIGGER job_durations_on_end AFTER UPDATE OF finished_at ON jobs
    WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NEW.started_at IS NOT NULL
BEGIN
    INSERT INTO job_durations (kind, app, day, durations)
        VALUES (NEW.kind, NEW.app, NEW.created_at / 86400000,
                max(NEW.finished_at - NEW.started_at, 0))
        ON CONFLICT (kind, app, day) DO UPDATE SET durations = durations || ',' || excluded.durations;
END;

-- Lead times (commit → live, README "Insights") the same way: per app and
-- UTC day of the deploy's request, the milliseconds from the release's
-- commit time to the deploy job's end, for deploys that went live. The
-- release row is written by the deploy's steps, before its end.
CREATE TABLE lead_times (
    app   TEXT NOT NULL,
    day   INTEGER NOT NULL,       -- the deploy job's created_at / 86400000
    leads TEXT NOT NULL,          -- "1800000,7200000": ms, packed
    PRIMARY KEY (app, day)
) WITHOUT ROWID;

INSERT INTO lead_times (app, day, leads)
    SELECT j.app, j.created_at / 86400000, group_concat(max(j.finished_at - r.committed_at, 0))
    FROM jobs j JOIN releases r ON r.job_id = j.id
    WHERE j.kind = 'deploy' AND j.state = 'succeeded'
      AND j.finished_at IS NOT NULL AND r.committed_at IS NOT NULL
    GROUP BY 1, 2;

CREATE TRIGGER lead_times_on_end AFTER UPDATE OF finished_at ON jobs
    WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL
     AND NEW.kind = 'deploy' AND NEW.state = 'succeeded'
BEGIN
    INSERT INTO lead_times (app, day, leads)
        SELECT NEW.app, NEW.created_at / 86400000, max(NEW.finished_at - r.committed_at, 0)
        FROM releases r WHERE r.job_id = NEW.id AND r.committed_at IS NOT NULL
        ON CONFLICT (app, day) DO UPDATE SET leads = leads || ',' || excluded.leads;
END;
