//! An app's env file edited where it lives: on this machine through
//! [`envfile`]'s writes, on another host through small POSIX shell scripts
//! over SSH that keep the same guarantees — a backup that exists is
//! complete (temp file, `sync`, hard link), the file is replaced by a
//! temp file with its mode and owner then `mv`, and the directory is
//! synced. Paths and counts reach the scripts as positional parameters,
//! never as shell syntax; the file's content travels on stdin and stdout,
//! never in argv.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Host;
use super::envfile;
use super::exec::Captured;
use super::ssh::Remote;
use crate::{Error, Result};

/// Reading or replacing one small file on a host.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `sh -c BACKUP sh FILE KEEP STAMP`: prints the backup's path.
const BACKUP: &str = r#"set -e; umask 077
f=$1; keep=$2; stamp=$3; d=$(dirname -- "$f"); n=$(basename -- "$f")
t=$(mktemp "$d/.$n.opsdeck-XXXXXX"); trap 'rm -f -- "$t"' EXIT
cat -- "$f" > "$t"; sync -- "$t"
b="$d/$n.opsdeck-backup-$stamp"; i=0
while ! ln -- "$t" "$b" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -lt 100 ] || { echo "cannot link a backup as $b" >&2; exit 1; }
  b="$d/$n.opsdeck-backup-$stamp-$i"
done
sync -- "$d"
ls -1d -- "$d/$n.opsdeck-backup-"* | sort | head -n "-$keep" | while IFS= read -r old; do rm -f -- "$old"; done
printf '%s\n' "$b""#;

/// `sh -c REPLACE sh FILE < CONTENT`: the file's mode and owner are kept
/// (a user who may not give the temp file the original's owner fails
/// before anything is replaced).
const REPLACE: &str = r#"set -e; umask 077
f=$1; d=$(dirname -- "$f"); n=$(basename -- "$f")
t=$(mktemp "$d/.$n.opsdeck-XXXXXX"); trap 'rm -f -- "$t"' EXIT
cat > "$t"
chmod --reference="$f" -- "$t"; chown --reference="$f" -- "$t"
sync -- "$t"; mv -f -- "$t" "$f"; trap - EXIT; sync -- "$d""#;

/// The file's text.
pub async fn read(host: &Host, path: &Path) -> Result<String> {
    match host {
        Host::Local => std::fs::read_to_string(path)
            .map_err(|e| Error::Unavailable(format!("cannot read {}: {e}", path.display()))),
        Host::Shell(remote) => {
            let out = script(remote, "read", path, "cat -- \"$1\"", &[], Vec::new()).await?;
            // As `read_to_string` here: a file that is not text is refused,
            // never decoded lossily and written back changed.
            if out.stdout_lossy {
                return Err(Error::Unavailable(format!(
                    "{} is not UTF-8 text",
                    host.place(path)
                )));
            }
            Ok(out.stdout)
        }
    }
}

/// Copies the file to `<name>.opsdeck-backup-<UTC timestamp>` next to it,
/// mode 0600, keeping the newest `keep`; the copy's path.
pub async fn backup(host: &Host, path: &Path, keep: usize) -> Result<PathBuf> {
    match host {
        Host::Local => envfile::backup(path, keep),
        Host::Shell(remote) => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
            let keep = keep.max(1).to_string();
            let printed = script(
                remote,
                "back up",
                path,
                BACKUP,
                &[&keep, &stamp],
                Vec::new(),
            )
            .await?;
            Ok(PathBuf::from(printed.stdout.trim_end_matches('\n')))
        }
    }
}

/// Replaces the file with `content`, atomically, keeping its mode and owner.
pub async fn replace(host: &Host, path: &Path, content: Vec<u8>) -> Result<()> {
    match host {
        Host::Local => envfile::write_atomically(path, &content),
        Host::Shell(remote) => script(remote, "replace", path, REPLACE, &[], content)
            .await
            .map(drop),
    }
}

/// Puts `backup`'s content back at `path`, as [`replace`] does.
pub async fn restore(host: &Host, path: &Path, backup: &Path) -> Result<()> {
    match host {
        Host::Local => envfile::restore(path, backup),
        Host::Shell(_) => {
            let content = read(host, backup).await?;
            replace(host, path, content.into_bytes()).await
        }
    }
}

/// Runs `sh -c body sh path args…` on `remote` with `input` on stdin; what
/// it printed, or an error saying what could not be done to the file there.
async fn script(
    remote: &Remote,
    what: &str,
    path: &Path,
    body: &str,
    args: &[&str],
    input: Vec<u8>,
) -> Result<Captured> {
    let mut argv = vec![path.display().to_string()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    remote
        .script((what, path), body, &argv, input, TIMEOUT)
        .await
}
