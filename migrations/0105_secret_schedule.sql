-- Scheduled rotations (`schedule` on a secret): the last minute the
-- scheduler handled per secret, as `sweep_schedule` does for sweeps, so a
-- minute is handled once across restarts and a missed one is noticed.
CREATE TABLE secret_schedule (
    app       TEXT NOT NULL,
    secret    TEXT NOT NULL,
    last_fire INTEGER NOT NULL,
    PRIMARY KEY (app, secret)
);
