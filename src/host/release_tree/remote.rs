//! The release tree on another host: each operation one `sh -c SCRIPT sh
//! ARGS…` over SSH. Paths and names reach the scripts as positional
//! parameters, never as shell syntax. A script exits [`REFUSED`] for the
//! one refusal it knows (a release that exists, a missing shared entry…),
//! which becomes the same message as on this machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Survey, existing_release, missing_release, missing_shared, not_a_symlink};
use crate::Result;
use crate::host::Host;
use crate::host::git::Sha;
use crate::host::ssh::{REFUSED, Remote, path_arg as path};

/// Everything but exporting: a few small file operations.
const SHORT: Duration = Duration::from_secs(30);

/// How long exporting a commit's files may take (as on this machine).
const EXPORT: Duration = Duration::from_secs(300);

/// `sh -c CURRENT sh ROOT`: prints the link's target; nothing before the
/// first release.
const CURRENT: &str = r#"c=$1/current
if [ -L "$c" ]; then readlink -- "$c"; elif [ -e "$c" ]; then exit 3; fi"#;

/// `sh -c EXPORT sh REPO SHA DIR`: the archive is written to a temp file
/// first, so a failing `git archive` leaves no release directory behind
/// (POSIX sh has no `pipefail` to see it fail inside a pipe).
const EXPORT_SCRIPT: &str = r#"set -e
repo=$1; sha=$2; d=$3
if [ -e "$d" ] || [ -L "$d" ]; then exit 3; fi
p=$(dirname -- "$d"); mkdir -p -- "$p"
t=$(mktemp "$p/.opsdeck-export-XXXXXX"); trap 'rm -f -- "$t"' EXIT
cd -- "$repo"
git archive --format=tar -o "$t" "$sha"
mkdir -- "$d"
tar -x --no-same-owner -f "$t" -C "$d""#;

/// `sh -c LINK sh ROOT DIR ENTRY…`: on a missing entry, prints it on
/// stderr and exits 3.
const LINK: &str = r#"set -e
root=$1; d=$2; shift 2
for e in "$@"; do
  s=$root/shared/$e
  if [ ! -e "$s" ] && [ ! -L "$s" ]; then printf '%s' "$e" >&2; exit 3; fi
  l=$d/$e
  rm -rf -- "$l"
  mkdir -p -- "$(dirname -- "$l")"
  ln -s -- "$s" "$l"
  printf 'linked %s → %s\n' "$e" "$s"
done"#;

/// `sh -c SWITCH sh ROOT NAME`: a new symlink next to `current`, renamed
/// over it (`mv -T`, so it replaces the link rather than moving into the
/// directory it leads to), and the directory synced.
const SWITCH: &str = r#"set -e
root=$1; n=$2
[ -d "$root/releases/$n" ] || exit 3
rm -f -- "$root/.current.next"
ln -s -- "releases/$n" "$root/.current.next"
mv -T -- "$root/.current.next" "$root/current"
sync -- "$root""#;

/// `sh -c HAS sh DIR`.
const HAS: &str = r#"[ -d "$1" ] || exit 3"#;

/// `sh -c NAMES sh ROOT`.
const NAMES: &str = r#"[ -d "$1/releases" ] || exit 0
ls -1A -- "$1/releases""#;

/// `sh -c SURVEY sh ROOT`: tab-separated lines — `current PATH`, `dir
/// NAME PATH` (canonical), `use /proc/PID TARGET` for every process's
/// cwd, root and exe the user may read.
const SURVEY: &str = r#"r=$1/releases
[ -d "$r" ] || exit 0
c=$(readlink -f -- "$1/current") && [ -e "$c" ] && printf 'current\t%s\n' "$c"
for d in "$r"/*; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then printf 'dir\t%s\t%s\n' "${d##*/}" "$(readlink -f -- "$d")"; fi
done
find /proc -mindepth 2 -maxdepth 2 -path '/proc/[0-9]*' \( -name cwd -o -name root -o -name exe \) -printf 'use\t%h\t%l\n' 2>/dev/null
exit 0"#;

/// `sh -c REMOVE sh DIR`.
const REMOVE: &str = r#"rm -rf -- "$1""#;

pub(super) async fn current(host: &Remote, root: &Path) -> Result<Option<String>> {
    let out = host
        .script(
            ("read the current release in", root),
            CURRENT,
            &[path(root)],
            Vec::new(),
            SHORT,
        )
        .await?;
    if out.status == Some(REFUSED) {
        return Err(not_a_symlink(root, &Host::Shell(host.clone())));
    }
    let target = out.stdout.trim_end_matches('\n');
    Ok((!target.is_empty())
        .then(|| super::release_name(Path::new(target)))
        .flatten())
}

pub(super) async fn export(host: &Remote, repo: &Path, sha: &Sha, dir: &Path) -> Result<()> {
    let args = [path(repo), sha.to_string(), path(dir)];
    let out = host
        .script(
            ("make the release", dir),
            EXPORT_SCRIPT,
            &args,
            Vec::new(),
            EXPORT,
        )
        .await?;
    if out.status == Some(REFUSED) {
        return Err(existing_release(dir, &Host::Shell(host.clone())));
    }
    Ok(())
}

pub(super) async fn link_shared(
    host: &Remote,
    root: &Path,
    dir: &Path,
    shared: &[String],
) -> Result<Vec<String>> {
    let mut args = vec![path(root), path(dir)];
    args.extend(shared.iter().cloned());
    let out = host
        .script(
            ("link the shared entries into", dir),
            LINK,
            &args,
            Vec::new(),
            SHORT,
        )
        .await?;
    if out.status == Some(REFUSED) {
        let entry = out.stderr.trim();
        let source = root.join("shared").join(entry);
        return Err(missing_shared(&source, entry, &Host::Shell(host.clone())));
    }
    Ok(out.stdout.lines().map(str::to_owned).collect())
}

pub(super) async fn switch(host: &Remote, root: &Path, name: &str) -> Result<()> {
    let args = [path(root), name.to_owned()];
    let out = host
        .script(
            ("switch current in", root),
            SWITCH,
            &args,
            Vec::new(),
            SHORT,
        )
        .await?;
    if out.status == Some(REFUSED) {
        let dir = super::release_dir(root, name);
        return Err(missing_release(&dir, &Host::Shell(host.clone())));
    }
    Ok(())
}

pub(super) async fn has(host: &Remote, dir: &Path) -> Result<bool> {
    let out = host
        .script(("look for", dir), HAS, &[path(dir)], Vec::new(), SHORT)
        .await?;
    Ok(out.status != Some(REFUSED))
}

pub(super) async fn names(host: &Remote, root: &Path) -> Result<Vec<String>> {
    let out = host
        .script(
            ("list the releases in", root),
            NAMES,
            &[path(root)],
            Vec::new(),
            SHORT,
        )
        .await?;
    Ok(out.stdout.lines().map(str::to_owned).collect())
}

pub(super) async fn survey(host: &Remote, root: &Path) -> Result<Survey> {
    let out = host
        .script(
            ("list the releases in", root),
            SURVEY,
            &[path(root)],
            Vec::new(),
            SHORT,
        )
        .await?;
    let mut survey = Survey::default();
    let mut uses = Vec::new();
    for line in out.stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["current", path] => survey.current = Some(PathBuf::from(path)),
            ["dir", name, path] => survey.dirs.push(((*name).to_owned(), PathBuf::from(path))),
            ["use", proc, target] => {
                if let Some(pid) = proc.strip_prefix("/proc/").and_then(|p| p.parse().ok()) {
                    uses.push((pid, PathBuf::from(target)));
                }
            }
            _ => {}
        }
    }
    survey.in_use = uses
        .iter()
        .filter_map(|(pid, target)| super::using(&survey.dirs, target, *pid))
        .collect();
    Ok(survey)
}

pub(super) async fn remove(host: &Remote, dir: &Path) -> Result<()> {
    host.script(("remove", dir), REMOVE, &[path(dir)], Vec::new(), SHORT)
        .await
        .map(drop)
}
