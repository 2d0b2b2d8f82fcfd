//! The file work of the `sqlite-backup` sweep: a consistent copy of a live
//! SQLite database (the rfc-app runbook's 03:00 `sqlite3 .backup`), made
//! with `VACUUM INTO` while the app keeps writing, checked with `PRAGMA
//! integrity_check` before it gets its final name; listing and removing
//! old backups. Which backups go (`keep`) is the sweep's rule
//! (`steps::sweep`). And a restore's: a backup checked, then put in the
//! database's place (a temp file beside it with its owner and mode,
//! renamed over it; the old database's `-wal`, `-shm` and `-journal`
//! removed first, so SQLite never applies them to the new file).
//!
//! Backups are `<dir>/<database stem>-<UTC timestamp>.<ext>`, listed by
//! [`super::backup`], which also names them.
//!
//! For an app on another host the same steps run there ([`remote`]),
//! through the host's `sqlite3`, as the runbook's cron line did.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::host::Host;
use crate::{Error, Result};

mod remote;

/// How long the backup waits for the app's write lock before giving up.
const BUSY: Duration = Duration::from_secs(60);

/// `<stem>-` and `.<ext>` around a backup's timestamp.
pub(super) fn affixes(database: &Path) -> (String, String) {
    let stem = database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "database".into());
    let ext = database
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_else(|| ".db".into());
    (format!("{stem}-"), ext)
}

/// The regular files in `dir` on another host, with their sizes.
pub(super) async fn remote_files(
    host: &crate::host::ssh::Remote,
    dir: &Path,
) -> Result<Vec<(String, u64)>> {
    remote::files(host, dir).await
}

/// Makes backup `name` of `database` in `dir`: what was done, in the
/// past tense.
pub(super) async fn create(host: &Host, database: &Path, dir: &Path, name: &str) -> Result<String> {
    let size = match host {
        Host::Local => create_here(database, dir, name).await?,
        Host::Shell(remote) => remote::create(remote, database, dir, name).await?,
    };
    Ok(format!(
        "created backup {} ({size} bytes, integrity_check ok)",
        host.place(&dir.join(name))
    ))
}

/// `PRAGMA integrity_check` on `file` (a backup about to be restored, or
/// the database just put in place), opened read-only; what it said.
pub(super) async fn check(host: &Host, file: &Path) -> Result<String> {
    match host {
        Host::Local => verify(file).await?,
        Host::Shell(remote) => remote::check(remote, file).await?,
    }
    Ok(format!("{}: PRAGMA integrity_check ok", host.place(file)))
}

/// Puts `from` in `database`'s place: the old database's `-wal`, `-shm`
/// and `-journal` removed (they belong to the old file), then a copy
/// beside it with its owner and mode renamed over it, so a crash leaves
/// the old database or the new one. Nothing may have the database open:
/// the restore stopped the app's units first.
pub(super) async fn put_in_place(host: &Host, database: &Path, from: &Path) -> Result<String> {
    match host {
        Host::Local => {
            let (database, from) = (database.to_owned(), from.to_owned());
            tokio::task::spawn_blocking(move || put_here(&database, &from))
                .await
                .map_err(|e| {
                    Error::Internal(anyhow::anyhow!("the restore's copy panicked: {e}"))
                })??;
        }
        Host::Shell(remote) => remote::put_in_place(remote, database, from).await?,
    }
    Ok(format!(
        "{} is now a copy of {} (owner and mode kept)",
        host.place(database),
        from.display()
    ))
}

fn put_here(database: &Path, from: &Path) -> Result<()> {
    if !database.is_file() {
        return Err(Error::Unavailable(format!(
            "{} does not exist",
            database.display()
        )));
    }
    for beside in sidecars(database) {
        match std::fs::remove_file(&beside) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Unavailable(format!(
                    "cannot remove {}: {e}",
                    beside.display()
                )));
            }
            _ => {}
        }
    }
    crate::host::envfile::restore(database, from)
}

/// What SQLite keeps beside a database file: `-wal`, `-shm`, `-journal`.
fn sidecars(file: &Path) -> [PathBuf; 3] {
    ["-wal", "-shm", "-journal"].map(|suffix| {
        let mut beside = file.as_os_str().to_owned();
        beside.push(suffix);
        PathBuf::from(beside)
    })
}

/// Makes backup `name` of `database` in `dir` on this machine; its size.
async fn create_here(database: &Path, dir: &Path, name: &str) -> Result<u64> {
    if !database.is_file() {
        return Err(Error::Unavailable(format!(
            "{} does not exist",
            database.display()
        )));
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join(name);
    let partial = dir.join(format!(".{name}.partial"));
    let made = copy(database, &partial).await.and(verify(&partial).await);
    if let Err(e) = made {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    // The copy holds what the database holds: no more readable than it.
    if let Ok(meta) = tokio::fs::metadata(database).await {
        let _ = tokio::fs::set_permissions(&partial, meta.permissions()).await;
    }
    tokio::fs::rename(&partial, &file)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot rename {}: {e}", partial.display())))?;
    Ok(tokio::fs::metadata(&file)
        .await
        .map(|m| m.len())
        .unwrap_or(0))
}

async fn open(file: &Path, read_only: bool) -> Result<SqliteConnection> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))
        .map_err(|e| Error::Unavailable(format!("{}: {e}", file.display())))?
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(BUSY);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", file.display())))
}

/// `VACUUM INTO`: one read transaction, so the copy is the database as of
/// one instant, whatever the app writes meanwhile.
async fn copy(database: &Path, to: &Path) -> Result<()> {
    let mut conn = open(database, false).await?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(to.display().to_string())
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    copied.map_err(|e| Error::Unavailable(format!("VACUUM INTO {} failed: {e}", to.display())))?;
    Ok(())
}

/// `PRAGMA integrity_check` on `file`, read-only: nothing is written
/// beside it.
async fn verify(file: &Path) -> Result<()> {
    let mut conn = open(file, true).await?;
    let said: Result<Vec<String>, _> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await;
    let _ = conn.close().await;
    let said =
        said.map_err(|e| Error::Unavailable(format!("{} does not open: {e}", file.display())))?;
    if said != ["ok"] {
        return Err(Error::Unavailable(format!(
            "{} failed PRAGMA integrity_check: {}",
            file.display(),
            said.join("; ")
        )));
    }
    Ok(())
}

/// Removes backup `file`; what was done, in the past tense.
pub(super) async fn remove(host: &Host, file: &Path) -> Result<String> {
    match host {
        Host::Local => remove_here(file).await?,
        Host::Shell(remote) => remote::remove(remote, file).await?,
    }
    Ok(format!("removed backup {}", host.place(file)))
}

async fn remove_here(file: &Path) -> Result<()> {
    tokio::fs::remove_file(file)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot remove {}: {e}", file.display())))?;
    // What SQLite leaves beside a backup someone opened (to restore from it).
    for beside in sidecars(file) {
        let _ = tokio::fs::remove_file(beside).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The old database's `-wal`, `-shm` and `-journal` belong to the old
    /// file: left beside the new one, SQLite would apply them to it.
    #[test]
    fn putting_a_backup_in_place_keeps_the_mode_and_drops_the_old_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let backup = dir.path().join("app-20261203T030000123Z.db");
        std::fs::write(&db, "old").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(&backup, "new").unwrap();
        for beside in sidecars(&db) {
            std::fs::write(beside, "stale").unwrap();
        }
        put_here(&db, &backup).unwrap();
        assert_eq!(std::fs::read_to_string(&db).unwrap(), "new");
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert!(sidecars(&db).iter().all(|f| !f.exists()));
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "new");
        let missing = put_here(&dir.path().join("gone.db"), &backup).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
    }
}
