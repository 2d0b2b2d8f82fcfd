-- The `command` strategy: the values a release's deploy steps ran with,
-- as a JSON object ({"ref": …, "sha": …, "tag": …}); a rollback and an
-- automatic recovery run the steps again with them. NULL for the other
-- strategies. `sha` is '' for a command app without `repo` (no commit).
ALTER TABLE releases ADD COLUMN vals TEXT;
