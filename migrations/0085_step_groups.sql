-- The process group of each job step running now, so that after a crash
-- whatever the step left behind is found even when it cleared its
-- environment (`env -i`, `sudo`) and so lost OPSDECK_JOB. A row lives while
-- its step runs. `started` is the group leader's start time (clock ticks
-- since boot, /proc/<pid>/stat) on boot `boot_id`: a group number reused
-- later, or after a reboot, names someone else. `run_as`: the account the
-- step ran as (and its group), through which its processes are killed.
CREATE TABLE step_groups (
    job     INTEGER NOT NULL,
    pgid    INTEGER NOT NULL,
    started INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    run_as  TEXT,
    run_group TEXT,
    PRIMARY KEY (job, pgid)
);
