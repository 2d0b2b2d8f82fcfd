//! `sqlite-backup` on another host: the same copy, check and rename, made
//! there by the host's `sqlite3` (the runbook's own tool) in one script.

use std::path::Path;
use std::time::Duration;

use crate::Result;
use crate::host::ssh::{Remote, path_arg as path};

/// Listing or removing a few files.
const SHORT: Duration = Duration::from_secs(30);

/// A backup waits up to 60 s for the app's write lock, then copies.
const COPY: Duration = Duration::from_secs(600);

/// `sh -c FILES sh DIR`: the size and name of each regular file in DIR.
const FILES: &str = r#"[ -d "$1" ] || exit 0
find "$1" -mindepth 1 -maxdepth 1 -type f -printf '%s %f\n'"#;

/// `sh -c CHECK sh FILE`: `PRAGMA integrity_check`, read-only.
const CHECK: &str = r#"if ! command -v sqlite3 >/dev/null; then echo 'sqlite3 is not installed there (apt install sqlite3)' >&2; exit 1; fi
if [ ! -f "$1" ]; then printf '%s does not exist\n' "$1" >&2; exit 1; fi
if ! said=$(sqlite3 -readonly "$1" 'PRAGMA integrity_check' 2>&1); then printf '%s does not open: %s\n' "$1" "$said" >&2; exit 1; fi
if [ "$said" != ok ]; then printf '%s failed PRAGMA integrity_check: %s\n' "$1" "$said" >&2; exit 1; fi"#;

/// `sh -c PUT sh DATABASE FROM`: FROM copied to a temp file beside the
/// database with its mode and owner (a user who may not give it that
/// owner fails before anything is replaced), the old database's `-wal`,
/// `-shm` and `-journal` removed, the copy renamed over it, synced.
const PUT: &str = r#"set -e; umask 077
db=$1; from=$2; d=$(dirname -- "$db"); n=$(basename -- "$db")
if [ ! -f "$db" ]; then printf '%s does not exist\n' "$db" >&2; exit 1; fi
t=$(mktemp "$d/.$n.opsdeck-XXXXXX"); trap 'rm -f -- "$t"' EXIT
cat -- "$from" > "$t"
chmod --reference="$db" -- "$t"; chown --reference="$db" -- "$t"
sync -- "$t"
rm -f -- "$db-wal" "$db-shm" "$db-journal"
mv -f -- "$t" "$db"; trap - EXIT; sync -- "$d""#;

/// `sh -c CREATE sh DATABASE DIR NAME`: `VACUUM INTO` a hidden partial
/// file (its path quoted as an SQL string), `PRAGMA integrity_check` on
/// the copy, the database's mode, sync, rename, sync the directory; prints
/// the backup's size.
const CREATE: &str = r#"set -e
db=$1; dir=$2; name=$3
if [ ! -f "$db" ]; then printf '%s does not exist\n' "$db" >&2; exit 1; fi
if ! command -v sqlite3 >/dev/null; then echo 'sqlite3 is not installed there (apt install sqlite3)' >&2; exit 1; fi
mkdir -p -- "$dir"
p=$dir/.$name.partial
rm -f -- "$p"; trap 'rm -f -- "$p"' EXIT
q=$(printf '%s' "$p" | sed "s/'/''/g")
sqlite3 -bail -cmd '.timeout 60000' "$db" "VACUUM INTO '$q'"
said=$(sqlite3 -readonly "$p" 'PRAGMA integrity_check')
if [ "$said" != ok ]; then printf 'the copy failed PRAGMA integrity_check: %s\n' "$said" >&2; exit 1; fi
chmod --reference="$db" -- "$p"
sync -- "$p"; mv -- "$p" "$dir/$name"; trap - EXIT; sync -- "$dir"
wc -c < "$dir/$name""#;

/// `sh -c REMOVE sh FILE`: the backup and what SQLite leaves beside one
/// someone opened.
const REMOVE: &str = r#"rm -- "$1" && rm -f -- "$1-wal" "$1-shm" "$1-journal""#;

pub(super) async fn files(host: &Remote, dir: &Path) -> Result<Vec<(String, u64)>> {
    let out = host
        .script(("list", dir), FILES, &[path(dir)], Vec::new(), SHORT)
        .await?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|line| {
            let (bytes, name) = line.split_once(' ')?;
            Some((name.to_owned(), bytes.parse().ok()?))
        })
        .collect())
}

pub(super) async fn check(host: &Remote, file: &Path) -> Result<()> {
    host.script(("check", file), CHECK, &[path(file)], Vec::new(), COPY)
        .await
        .map(drop)
}

pub(super) async fn put_in_place(host: &Remote, database: &Path, from: &Path) -> Result<()> {
    let args = [path(database), path(from)];
    host.script(("replace", database), PUT, &args, Vec::new(), COPY)
        .await
        .map(drop)
}

pub(super) async fn create(host: &Remote, database: &Path, dir: &Path, name: &str) -> Result<u64> {
    let args = [path(database), path(dir), name.to_owned()];
    let out = host
        .script(("back up", database), CREATE, &args, Vec::new(), COPY)
        .await?;
    Ok(out.stdout.trim().parse().unwrap_or(0))
}

pub(super) async fn remove(host: &Remote, file: &Path) -> Result<()> {
    host.script(("remove", file), REMOVE, &[path(file)], Vec::new(), SHORT)
        .await
        .map(drop)
}
