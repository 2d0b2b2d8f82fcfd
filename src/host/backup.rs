//! Database backups, whatever the database: what the `sqlite-backup` and
//! `postgres-backup` sweeps and a Restore of their backups do, behind one
//! type ([`Backups`]) so the sweep's rule (`keep`) and the restore's steps
//! are written once. Each kind does the database's own work in its module:
//! [`super::sqlite_backup`] (`VACUUM INTO`, `PRAGMA integrity_check`, a
//! file renamed over the database), [`super::pg_backup`] (`pg_dump`,
//! `pg_restore --list`, `pg_restore --clean`).
//!
//! Backups are `<dir>/<stem>-<UTC timestamp><ext>`; other files in `dir`
//! are never touched.

use std::path::{Path, PathBuf};

use super::{Host, pg_backup, sqlite_backup};
use crate::Result;
use crate::config::{Sweep, SweepKind};

/// One backup of a database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Backup {
    pub path: PathBuf,
    /// Its file name: how a Restore asks for it.
    pub name: String,
    pub bytes: u64,
    /// When it was taken (from its name), Unix milliseconds.
    pub taken: i64,
}

/// The database a backup sweep backs up.
#[derive(Debug, Clone, Copy)]
pub enum Database<'a> {
    /// A SQLite file.
    Sqlite(&'a Path),
    /// A PostgreSQL database name or libpq connection string, and the
    /// `PGPASSFILE` that holds its password, if peer authentication does
    /// not do.
    Postgres {
        database: &'a str,
        passfile: Option<&'a Path>,
    },
}

/// A database and the directory its backups go to: one backup sweep.
#[derive(Debug, Clone, Copy)]
pub struct Backups<'a> {
    pub database: Database<'a>,
    pub dir: &'a Path,
}

impl<'a> Backups<'a> {
    /// What `sweep` backs up, if it is a backup sweep with its keys set.
    pub fn of(sweep: &'a Sweep) -> Option<Backups<'a>> {
        let (database, dir) = (sweep.database.as_deref()?, sweep.dir.as_deref()?);
        let database = match sweep.kind {
            SweepKind::SqliteBackup => Database::Sqlite(Path::new(database)),
            SweepKind::PostgresBackup => Database::Postgres {
                database,
                passfile: sweep.passfile.as_deref(),
            },
            _ => return None,
        };
        Some(Backups { database, dir })
    }

    /// `<stem>-` and `<ext>` around a backup's timestamp.
    fn affixes(&self) -> (String, String) {
        match self.database {
            Database::Sqlite(file) => sqlite_backup::affixes(file),
            Database::Postgres { database, .. } => {
                (format!("{}-", pg_backup::name(database)), ".dump".into())
            }
        }
    }

    /// How the database is named in messages.
    pub fn database(&self) -> String {
        match self.database {
            Database::Sqlite(file) => file.display().to_string(),
            Database::Postgres { database, .. } => format!("PostgreSQL database {database:?}"),
        }
    }

    /// How a backup is checked, for a step's command line.
    pub fn check_tool(&self) -> &'static str {
        match self.database {
            Database::Sqlite(_) => "PRAGMA integrity_check",
            Database::Postgres { .. } => "pg_restore --list",
        }
    }

    /// The backups, oldest first.
    pub async fn list(&self, host: &Host) -> Result<Vec<Backup>> {
        let (prefix, suffix) = self.affixes();
        let files = match host {
            Host::Local => files(self.dir)?,
            Host::Shell(remote) => sqlite_backup::remote_files(remote, self.dir).await?,
        };
        let mut found: Vec<Backup> = files
            .into_iter()
            .filter_map(|(name, bytes)| {
                let stamp = name.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
                let taken = taken(stamp)?;
                Some(Backup {
                    path: self.dir.join(&name),
                    name,
                    bytes,
                    taken,
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// Makes a new backup, checked before it gets its name: its path, and
    /// what was done, in the past tense.
    pub async fn create(&self, host: &Host) -> Result<(PathBuf, String)> {
        let (prefix, suffix) = self.affixes();
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let name = format!("{prefix}{stamp}{suffix}");
        let said = match self.database {
            Database::Sqlite(file) => sqlite_backup::create(host, file, self.dir, &name).await?,
            Database::Postgres { database, passfile } => {
                pg_backup::create(host, database, passfile, self.dir, &name).await?
            }
        };
        Ok((self.dir.join(name), said))
    }

    /// Checks backup `file` (before a restore puts it back): what the
    /// check said.
    pub async fn check(&self, host: &Host, file: &Path) -> Result<String> {
        match self.database {
            Database::Sqlite(_) => sqlite_backup::check(host, file).await,
            Database::Postgres { .. } => pg_backup::check(host, file).await,
        }
    }

    /// Makes the database what backup `file` holds. Nothing may be using
    /// the database: the restore stopped the app's units first.
    pub async fn put_back(&self, host: &Host, file: &Path) -> Result<String> {
        match self.database {
            Database::Sqlite(database) => sqlite_backup::put_in_place(host, database, file).await,
            Database::Postgres { database, passfile } => {
                pg_backup::restore(host, database, passfile, file).await
            }
        }
    }

    /// Checks the database just put back, where that is a step of its own:
    /// SQLite's file copy is checked with `PRAGMA integrity_check`; a
    /// PostgreSQL restore is one transaction that either applied or not.
    pub fn checks_after_restore(&self) -> bool {
        matches!(self.database, Database::Sqlite(_))
    }

    /// `PRAGMA integrity_check` on the database itself (SQLite only).
    pub async fn check_database(&self, host: &Host) -> Result<String> {
        match self.database {
            Database::Sqlite(database) => sqlite_backup::check(host, database).await,
            Database::Postgres { .. } => {
                Ok("the restore ran in one transaction: nothing more to check".into())
            }
        }
    }
}

/// Removes backup `file` (of either kind); what was done, in the past tense.
pub async fn remove(host: &Host, file: &Path) -> Result<String> {
    sqlite_backup::remove(host, file).await
}

/// The regular files in `dir` with their sizes (none if it does not exist).
fn files(dir: &Path) -> Result<Vec<(String, u64)>> {
    Ok(super::dir_entries(dir)?
        .into_iter()
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some((e.file_name().to_string_lossy().into_owned(), meta.len()))
        })
        .collect())
}

/// When a backup named with `stamp` was taken (Unix ms), if `stamp` is
/// what [`Backups::create`] names backups with.
fn taken(stamp: &str) -> Option<i64> {
    if !is_timestamp(stamp) {
        return None;
    }
    let (seconds, millis) = stamp.split_at(15);
    let at = chrono::NaiveDateTime::parse_from_str(seconds, "%Y%m%dT%H%M%S").ok()?;
    let millis: i64 = millis.trim_end_matches('Z').parse().ok()?;
    Some(at.and_utc().timestamp_millis() + millis)
}

/// `20261203T030000123Z`: what [`Backups::create`] names backups with.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_dated_by_its_name() {
        let at = taken("20261203T030000123Z").unwrap();
        assert_eq!(
            chrono::DateTime::from_timestamp_millis(at)
                .unwrap()
                .to_rfc3339(),
            "2026-12-03T03:00:00.123+00:00"
        );
        assert_eq!(taken("20261203T0300001234"), None);
        assert_eq!(taken("latest"), None);
    }
}
