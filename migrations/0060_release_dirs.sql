-- The `releases` strategy: the directory under <path>/releases/ a deploy
-- made, or a rollback switched to. NULL with `checkout`.
ALTER TABLE releases ADD COLUMN dir TEXT;
CREATE INDEX releases_dir ON releases (app, dir) WHERE dir IS NOT NULL;
