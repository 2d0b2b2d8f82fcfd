//! The file work of the `sqlite-backup` sweep: a consistent copy of a live
//! SQLite database (the rfc-app runbook's 03:00 `sqlite3 .backup`), made
//! with `VACUUM INTO` while the app keeps writing, checked with `PRAGMA
//! integrity_check` before it gets its final name; listing and removing
//! old backups. Which backups go (`keep`) is the sweep's rule
//! (`steps::sweep`).
//!
//! Backups are `<dir>/<database stem>-<UTC timestamp>.<ext>`; other files in
//! `dir` are never touched.
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
fn affixes(database: &Path) -> (String, String) {
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

/// The backups of `database` in `dir`, oldest first.
pub async fn backups(host: &Host, database: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let (prefix, suffix) = affixes(database);
    let files = match host {
        Host::Local => files(dir)?,
        Host::Shell(remote) => remote::files(remote, dir).await?,
    };
    let mut found: Vec<PathBuf> = files
        .into_iter()
        .filter(|name| {
            name.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&suffix))
                .is_some_and(is_timestamp)
        })
        .map(|name| dir.join(name))
        .collect();
    found.sort();
    Ok(found)
}

/// The names of the regular files in `dir` (none if it does not exist).
fn files(dir: &Path) -> Result<Vec<String>> {
    Ok(crate::host::dir_entries(dir)?
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// `20261203T030000123Z`: what [`create`] names backups with.
fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 19
        && bytes[8] == b'T'
        && bytes[18] == b'Z'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| matches!(i, 8 | 18) || b.is_ascii_digit())
}

/// Makes a new backup of `database` in `dir`; what was done, in the past
/// tense.
pub async fn create(host: &Host, database: &Path, dir: &Path) -> Result<String> {
    let (prefix, suffix) = affixes(database);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
    let name = format!("{prefix}{stamp}{suffix}");
    let size = match host {
        Host::Local => create_here(database, dir, &name).await?,
        Host::Shell(remote) => remote::create(remote, database, dir, &name).await?,
    };
    Ok(format!(
        "created backup {} ({size} bytes, integrity_check ok)",
        host.place(&dir.join(name))
    ))
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

async fn verify(copy: &Path) -> Result<()> {
    let mut conn = open(copy, true).await?;
    let said: Result<Vec<String>, _> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await;
    let _ = conn.close().await;
    let said = said.map_err(|e| {
        Error::Unavailable(format!("the copy {} does not open: {e}", copy.display()))
    })?;
    if said != ["ok"] {
        return Err(Error::Unavailable(format!(
            "the copy failed PRAGMA integrity_check: {}",
            said.join("; ")
        )));
    }
    Ok(())
}

/// Removes backup `file`; what was done, in the past tense.
pub async fn remove(host: &Host, file: &Path) -> Result<String> {
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
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut beside = file.as_os_str().to_owned();
        beside.push(suffix);
        let _ = tokio::fs::remove_file(PathBuf::from(beside)).await;
    }
    Ok(())
}
