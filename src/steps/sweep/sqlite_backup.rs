//! `sqlite-backup`: a new backup of the database each run, then the oldest
//! backups beyond `keep` removed (the new one counts). The copying, listing
//! and removing is `host::sqlite_backup`'s.

use super::{Found, Item};
use crate::config::Sweep;
use crate::host::Host;
use crate::host::sqlite_backup::backups;
use crate::{Error, Result};

pub(super) async fn find(host: &Host, sweep: &Sweep) -> Result<Found> {
    let (Some(database), Some(dir)) = (&sweep.database, &sweep.dir) else {
        return Err(Error::Unavailable(format!(
            "sweep {} needs `database` and `dir`",
            sweep.name
        )));
    };
    // The new backup is one of the `keep`.
    let keep = sweep.keep.unwrap_or(1).max(1);
    let mut found = Found::default();
    found.items.push(Item::CreateBackup {
        database: database.clone(),
        dir: dir.clone(),
    });
    let existing = backups(host, database, dir).await?;
    let remove = (existing.len() + 1).saturating_sub(keep);
    for old in existing.iter().take(remove) {
        found.items.push(Item::RemoveBackup(old.path.clone()));
    }
    for kept in existing.iter().skip(remove) {
        found.kept.push(format!("backup {}", kept.path.display()));
    }
    Ok(found)
}
