-- Approvals (README "Approvals"): a request that needs a second person's
-- yes waits as `awaiting_approval`, holding no app lock, until someone with
-- `approval_role` approves it (→ queued, its stored plan unchanged: the
-- commit pinned at request time), denies it, or `approval_expires_at`
-- passes (→ expired). The decision's who, when and why stay on the row for
-- the job page; the audit log has them too, in its hash chain.
ALTER TABLE jobs ADD COLUMN approval_role TEXT;
ALTER TABLE jobs ADD COLUMN approval_expires_at INTEGER;
ALTER TABLE jobs ADD COLUMN decided_by TEXT;
ALTER TABLE jobs ADD COLUMN decided_at INTEGER;
ALTER TABLE jobs ADD COLUMN decision_reason TEXT;
-- An owner's deploy that skipped a required approval: the reason given.
ALTER TABLE jobs ADD COLUMN emergency TEXT;
CREATE INDEX jobs_awaiting ON jobs (approval_expires_at) WHERE state = 'awaiting_approval';
