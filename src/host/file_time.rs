//! When a file on an app's host last changed: how old a secret is before
//! opsdeck ever rotated it (its env file was written then, or later).

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::Host;
use super::ssh::path_arg;
use crate::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(15);

/// The file's modification time, Unix milliseconds, read where it lives
/// (as the app's user, who may enter directories opsdeck may not).
pub async fn modified(host: &Host, path: &Path) -> Result<i64> {
    match host {
        Host::Local => {
            let cannot = |e: std::io::Error| {
                Error::Unavailable(format!("cannot read the time of {}: {e}", path.display()))
            };
            let at = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .map_err(cannot)?;
            let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            Ok(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        }
        Host::Shell(remote) => {
            let out = remote
                .script(
                    ("read the time of", path),
                    r#"stat -c %Y -- "$1""#,
                    &[path_arg(path)],
                    Vec::new(),
                    TIMEOUT,
                )
                .await?;
            let seconds: i64 = out.stdout.trim().parse().map_err(|_| {
                Error::Unavailable(format!(
                    "`stat` printed no time for {}: {:?}",
                    host.place(path),
                    out.stdout.trim()
                ))
            })?;
            Ok(seconds.saturating_mul(1000))
        }
    }
}
