-- Notifications (README "Notifications"): every event meant for a
-- `[[notify]]` target is one row here, written where the event happens (a
-- plain INSERT, so a job never waits on a receiver). The deliverer sends
-- what is `pending` and due, retrying with backoff; a restart picks up
-- where it stopped, since the row is all there is.
CREATE TABLE notify_outbox (
    id INTEGER PRIMARY KEY,
    -- The `[[notify]]` name it goes to.
    target TEXT NOT NULL,
    -- `job.failed`, `health.down`, …
    event TEXT NOT NULL,
    app TEXT NOT NULL,
    job_id INTEGER,
    -- One sentence for people (Slack, Matrix), and the facts as JSON.
    text TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- `pending`, `delivered` or `failed` (gave up).
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When to try next (Unix milliseconds).
    next_at INTEGER NOT NULL,
    last_error TEXT,
    done_at INTEGER
);
CREATE INDEX notify_outbox_due ON notify_outbox (next_at) WHERE state = 'pending';

-- Health watch (README "Health watch"): one row per background probe of an
-- app, for its uptime bar; a change from the previous row is a transition.
CREATE TABLE health_samples (
    app TEXT NOT NULL,
    at INTEGER NOT NULL,
    up INTEGER NOT NULL,
    -- Why it was down (the first failing check's answer).
    detail TEXT
);
CREATE INDEX health_samples_app_at ON health_samples (app, at);
