-- `secret.overdue` is sent once per overdue stretch: a secret past its
-- `max_age` since `since` (its last rotation or file change, Unix ms) is
-- written here when its event goes to the outbox; a rotation starts a new
-- `since`, and so a new stretch.
CREATE TABLE notify_overdue (
    app TEXT NOT NULL,
    secret TEXT NOT NULL,
    since INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (app, secret, since)
);
