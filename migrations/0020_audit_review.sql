-- The audit page: time filters look up the first row at or after a time,
-- and the outcome filter (denied, failed) pages by id.
CREATE INDEX audit_at ON audit_events (at);
CREATE INDEX audit_outcome ON audit_events (outcome, id);
