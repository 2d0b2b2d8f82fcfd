-- Insights (README "Insights"): what the figures read, fast over 100,000
-- jobs (benches/insights.rs).
--
-- A release's commit time (committer time, Unix milliseconds), read from
-- the repository when the deploy or rollback is requested: lead time runs
-- from it to the job going live. NULL before this migration and for a
-- `command` app without a repository (no commit).
ALTER TABLE releases ADD COLUMN committed_at INTEGER;

-- Every figure reads the jobs of some apps and kinds requested in a range:
-- kind first, so durations come out grouped by kind without a sort, and
-- covering, so no row is read from the table.
CREATE INDEX jobs_insights ON jobs (kind, app, created_at, state, started_at, finished_at);

-- Time to restore: the first deploy or rollback that went live after a
-- failed deploy, one seek per failure.
CREATE INDEX jobs_went_live ON jobs (app, created_at)
    WHERE kind IN ('deploy', 'rollback') AND state = 'succeeded';

-- "Later rolled back": the rollback whose `replaces` names a release (the
-- release log's `bad` asks the same).
CREATE INDEX releases_replaces ON releases (replaces) WHERE replaces IS NOT NULL;
