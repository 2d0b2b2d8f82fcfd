-- Insights' job durations (p50/p95 per kind), kept per kind, app and UTC
-- day as they happen. Read from `jobs`, a 90-day range of 100,000 jobs
-- was 100,000 index entries per page view (35 ms of the page's 50 ms
-- budget, benches/insights.rs); from here it is a few hundred rows.
--
-- `durations` packs the milliseconds each job ran ("12,7,300"), as the
-- insights read them (`group_concat`). Triggers keep it, so every way a
-- job ends — the runner, a restart's interruption, a cancelled run, a
-- row written already ended — is counted once, in the same transaction.
-- Jobs are never deleted, so nothing is ever taken out.
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

CREATE TRIGGER job_durations_on_insert AFTER INSERT ON jobs
    WHEN NEW.finished_at IS NOT NULL AND NEW.started_at IS NOT NULL
BEGIN
    INSERT INTO job_durations (kind, app, day, durations)
        VALUES (NEW.kind, NEW.app, NEW.created_at / 86400000,
                max(NEW.finished_at - NEW.started_at, 0))
        ON CONFLICT (kind, app, day) DO UPDATE SET durations = durations || ',' || excluded.durations;
END;
