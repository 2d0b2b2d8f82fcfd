//! The PostgreSQL work of the `postgres-backup` sweep and its Restore (the
//! SITG runbook's database on the same VM): `pg_dump --format=custom` to a
//! hidden file in the backup directory, checked with `pg_restore --list`
//! before it gets its final name; a restore with `pg_restore --clean
//! --if-exists --single-transaction`, so it applies whole or not at all.
//!
//! The tools run on the app's host as its `user` (the host's `sudo -u`,
//! see [`super::run_as`]), so PostgreSQL's peer authentication lets in the
//! account that owns the database; or with `PGPASSFILE` set to the sweep's
//! `passfile`. No password is ever in a command line (the config refuses
//! a connection string that holds one), and `--no-password` makes a
//! missing one an error rather than a prompt.

use std::path::Path;
use std::time::Duration;

use super::Host;
use super::ssh::path_arg as path;
use crate::Result;

/// A dump or a restore of a large database takes a while.
const LONG: Duration = Duration::from_secs(3600);

/// Reading a dump's table of contents.
const CHECK_TIME: Duration = Duration::from_secs(600);

/// The tools' preamble: `PGPASSFILE` when given (`$1`), and the tools
/// there, or how to get them.
const PREAMBLE: &str = r#"set -e
if [ -n "$1" ]; then PGPASSFILE=$1; export PGPASSFILE; fi
for tool in pg_dump pg_restore; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed there (apt install postgresql-client)" >&2; exit 1; }
done
"#;

/// `sh -c CREATE sh PASSFILE DATABASE DIR NAME`: `pg_dump` to a hidden
/// partial file only its owner reads, `pg_restore --list` on it, sync,
/// rename, sync the directory; prints the dump's size and the number of
/// entries it holds.
const CREATE: &str = r#"db=$2; dir=$3; name=$4
mkdir -p -- "$dir"
p=$dir/.$name.partial
umask 077
rm -f -- "$p"; trap 'rm -f -- "$p"' EXIT
pg_dump --format=custom --no-password --file="$p" --dbname="$db"
toc=$(pg_restore --list "$p") || { echo "the dump failed pg_restore --list" >&2; exit 1; }
sync -- "$p"; mv -- "$p" "$dir/$name"; trap - EXIT; sync -- "$dir"
printf '%s %s\n' "$(wc -c < "$dir/$name")" "$(printf '%s\n' "$toc" | grep -vc '^;' || true)""#;

/// `sh -c CHECK sh PASSFILE FILE`: `pg_restore --list`; prints the number
/// of entries.
const CHECK: &str = r#"f=$2
if [ ! -f "$f" ]; then printf '%s does not exist\n' "$f" >&2; exit 1; fi
toc=$(pg_restore --list "$f") || { printf '%s is not a pg_dump archive pg_restore can read\n' "$f" >&2; exit 1; }
printf '%s\n' "$toc" | grep -vc '^;' || true"#;

/// `sh -c RESTORE sh PASSFILE DATABASE FILE`: the dump applied in one
/// transaction, dropping what it recreates first.
const RESTORE: &str =
    r#"pg_restore --clean --if-exists --single-transaction --no-password --dbname="$2" "$3""#;

fn passfile(passfile: Option<&Path>) -> String {
    passfile.map(path).unwrap_or_default()
}

/// Makes dump `name` of `database` in `dir`: what was done, in the past
/// tense.
pub(super) async fn create(
    host: &Host,
    database: &str,
    pass: Option<&Path>,
    dir: &Path,
    name: &str,
) -> Result<String> {
    let body = format!("{PREAMBLE}{CREATE}");
    let args = [
        passfile(pass),
        database.to_owned(),
        path(dir),
        name.to_owned(),
    ];
    let out = host
        .script(("back up into", dir), &body, &args, LONG)
        .await?;
    let (bytes, entries) = out.stdout.trim().split_once(' ').unwrap_or(("?", "?"));
    Ok(format!(
        "created backup {} with pg_dump ({bytes} bytes; pg_restore --list: {entries} entries)",
        host.place(&dir.join(name))
    ))
}

/// `pg_restore --list` on dump `file`: what it said.
pub(super) async fn check(host: &Host, file: &Path) -> Result<String> {
    let body = format!("{PREAMBLE}{CHECK}");
    let out = host
        .script(
            ("check", file),
            &body,
            &[String::new(), path(file)],
            CHECK_TIME,
        )
        .await?;
    Ok(format!(
        "{}: pg_restore --list ok ({} entries)",
        host.place(file),
        out.stdout.trim()
    ))
}

/// Makes `database` what dump `file` holds.
pub(super) async fn restore(
    host: &Host,
    database: &str,
    pass: Option<&Path>,
    file: &Path,
) -> Result<String> {
    let body = format!("{PREAMBLE}{RESTORE}");
    let args = [passfile(pass), database.to_owned(), path(file)];
    host.script(("restore from", file), &body, &args, LONG)
        .await?;
    Ok(format!(
        "PostgreSQL database {database:?} restored from {} (pg_restore --clean --if-exists --single-transaction)",
        file.display()
    ))
}

/// What backups of `database` are called: its database name, or
/// `database` when the connection string names none (libpq then uses the
/// user's name); only letters, digits, `_`, `.` and `-`.
pub(super) fn name(database: &str) -> String {
    let named = crate::config::postgres_database(database)
        .ok()
        .flatten()
        .unwrap_or_default();
    let clean: String = named
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match clean.trim_start_matches('.') {
        "" => "database".to_owned(),
        clean => clean.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_named_after_the_database() {
        assert_eq!(name("sitg"), "sitg");
        assert_eq!(name("host=/run/postgresql dbname=sitg"), "sitg");
        assert_eq!(name("host=/run/postgresql"), "database");
        assert_eq!(name("dbname='../my db'"), "_my_db");
    }
}
