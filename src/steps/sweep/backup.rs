//! `sqlite-backup`, `postgres-backup`: a new backup of the database each
//! run, then the oldest backups beyond `keep` removed (the new one counts).
//! Making, listing and removing backups is `host::backup`'s.

use super::{Found, Item};
use crate::config::Sweep;
use crate::host::Host;
use crate::host::backup::Backups;
use crate::{Error, Result};

/// What `sweep` backs up, or why it cannot.
pub(super) fn backups(sweep: &Sweep) -> Result<Backups<'_>> {
    Backups::of(sweep).ok_or_else(|| {
        Error::Unavailable(format!("sweep {} needs `database` and `dir`", sweep.name))
    })
}

pub(super) async fn find(host: &Host, sweep: &Sweep) -> Result<Found> {
    let backups = backups(sweep)?;
    // The new backup is one of the `keep`.
    let keep = sweep.keep.unwrap_or(1).max(1);
    let mut found = Found::default();
    found.items.push(Item::CreateBackup {
        sweep: sweep.name.clone(),
        database: backups.database(),
        dir: backups.dir.to_owned(),
    });
    let existing = backups.list(host).await?;
    let remove = (existing.len() + 1).saturating_sub(keep);
    for old in existing.iter().take(remove) {
        found.items.push(Item::RemoveBackup(old.path.clone()));
    }
    for kept in existing.iter().skip(remove) {
        found.kept.push(format!("backup {}", kept.path.display()));
    }
    Ok(found)
}
