//! The app's env file (`KEY=value` lines, as systemd's `EnvironmentFile=`
//! and python-dotenv read them). Editing changes exactly one key and keeps
//! every other byte — comments, order, quoting, unknown lines — so a
//! rotation's diff is one line. Writes are crash-safe: a reader (or a
//! restart after `kill -9`) sees the old file or the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::{Error, Result};

/// One `KEY=value` line: where the value sits in the line, and the value.
struct Assignment<'a> {
    key: &'a str,
    value: String,
    /// Byte range of the raw value (with its quotes) within the line.
    raw: std::ops::Range<usize>,
}

/// Parses one line; `Ok(None)` for blank and comment lines.
fn parse_line(line: &str) -> std::result::Result<Option<Assignment<'_>>, String> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let indent = line.len() - trimmed.len();
    let (body, offset) = match trimmed.strip_prefix("export ") {
        Some(rest) => (rest.trim_start(), line.len() - rest.trim_start().len()),
        None => (trimmed, indent),
    };
    let eq = body
        .find('=')
        .ok_or_else(|| "expected KEY=value, found no '='".to_string())?;
    let key = body[..eq].trim_end();
    if key.is_empty()
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || key.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!("{key:?} is not a variable name"));
    }
    let after = &body[eq + 1..];
    let start = offset + eq + 1 + (after.len() - after.trim_start().len());
    let raw = line[start..].trim_end();
    let value = match raw.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let close = raw[1..].find(q).ok_or_else(|| {
                format!("the value of {key} opens a {q} quote and never closes it")
            })?;
            let rest = raw[close + 2..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(format!("unexpected text after the quoted value of {key}"));
            }
            raw[1..=close].to_string()
        }
        _ => raw.split(" #").next().unwrap_or(raw).trim_end().to_string(),
    };
    let end = start
        + match raw.chars().next() {
            Some('"' | '\'') => value.len() + 2,
            _ => value.len(),
        };
    Ok(Some(Assignment {
        key,
        value,
        raw: start..end,
    }))
}

fn parse_error(path: &Path, number: usize, why: String) -> Error {
    Error::BadRequest(format!(
        "{}: line {number} cannot be parsed ({why}); the file was left untouched",
        path.display()
    ))
}

/// Every `(key, value)` of the file, in order; refuses a file it cannot parse.
pub fn values(path: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(a) = parse_line(line).map_err(|why| parse_error(path, i + 1, why))? {
            out.push((a.key.to_string(), a.value));
        }
    }
    Ok(out)
}

/// What job output must never show of this file, read leniently: each
/// assignment's `(Some(key), value)`, and `(None, line)` for each line that
/// does not parse (it may be a value pasted on a line of its own).
pub fn redactable(text: &str) -> Vec<(Option<String>, String)> {
    text.lines()
        .filter_map(|line| match parse_line(line) {
            Ok(Some(a)) => Some((Some(a.key.to_string()), a.value)),
            Ok(None) => None,
            Err(_) => Some((None, line.trim().to_string())),
        })
        .collect()
}

/// The value of `key`, if the file sets it.
pub fn get(path: &Path, text: &str, key: &str) -> Result<Option<String>> {
    Ok(values(path, text)?
        .into_iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v))
}

/// The file's text with `key` set to `value`, everything else byte-identical.
/// A missing key is appended at the end.
pub fn set(path: &Path, text: &str, key: &str, value: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len() + value.len() + key.len() + 2);
    let mut found = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end_matches(['\n', '\r']);
        match parse_line(content).map_err(|why| parse_error(path, i + 1, why))? {
            Some(a) if a.key == key => {
                found = true;
                out.push_str(&content[..a.raw.start]);
                out.push_str(value);
                out.push_str(&line[a.raw.end..]);
            }
            _ => out.push_str(line),
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    Ok(out)
}

/// `value` as it is written after `KEY=` so that every reader of env files
/// reads it back exactly: systemd's `EnvironmentFile=`, python-dotenv,
/// this parser. Bare when it is made of characters none of them treats
/// specially; else in single quotes, read literally by all three when it
/// has no `'` and no `\\` and does not end in `\` (python-dotenv unescapes
/// just those two there); else, holding a `'`, in double quotes when it
/// has nothing they would expand or unescape there. A value that fits
/// none of these is refused, saying why (never showing it).
pub fn literal(value: &str) -> std::result::Result<std::borrow::Cow<'_, str>, String> {
    let bare = |c: char| c.is_ascii_alphanumeric() || "-_.~+/=:@%,^".contains(c);
    if !value.is_empty() && value.chars().all(bare) {
        return Ok(value.into());
    }
    if value.chars().any(char::is_control) {
        return Err("it holds a line break or another control character".into());
    }
    if !value.contains('\'') && !value.contains("\\\\") && !value.ends_with('\\') {
        return Ok(format!("'{value}'").into());
    }
    if !value.contains(['\\', '"', '$', '`']) {
        return Ok(format!("\"{value}\"").into());
    }
    Err("its mix of quotes and backslashes cannot be written so that systemd and python-dotenv both read it back as it is".into())
}

/// Replaces `path` with `content` atomically: a temp file in the same
/// directory with the original's mode and owner, fsync, rename over the
/// original, fsync the directory (so the rename itself survives a crash).
pub fn write_atomically(path: &Path, content: &[u8]) -> Result<()> {
    replace(path, &mut &content[..])
}

/// [`write_atomically`] with what `content` reads (streamed, never held
/// whole: it may be a database).
fn replace(path: &Path, content: &mut dyn Read) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| io_error("read", path, e))?;
    let dir = parent(path);
    remove_stale_temps(path)?;
    let tmp =
        write_temp(path, content, Some(&meta), "write").map_err(|e| io_error("write", path, e))?;
    let renamed = fs::rename(&tmp, path).and_then(|()| {
        super::crash_point("write:renamed");
        File::open(dir)?.sync_all()
    });
    if let Err(e) = renamed {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("write", path, e));
    }
    super::crash_point("write:dir-synced");
    Ok(())
}

/// Writes `content` to a new temp file next to `path` and fsyncs it: with
/// `like`'s owner and mode, or private (0600, opsdeck's) without. `stage`
/// names its crash points (`write:…`, `backup:…`).
fn write_temp(
    path: &Path,
    content: &mut dyn Read,
    like: Option<&fs::Metadata>,
    stage: &str,
) -> std::io::Result<PathBuf> {
    let point = |name: &str| super::crash_point(&format!("{stage}:{name}"));
    let tmp = parent(path).join(format!(
        "{}{:016x}",
        temp_prefix(path),
        rand::rngs::OsRng.next_u64()
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        point("created");
        if let Some(meta) = like {
            // Owner first, then mode: chown may clear set-id bits.
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
            file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        point("owned");
        std::io::copy(content, &mut file)?;
        point("written");
        file.sync_all()?;
        point("synced");
        Ok(())
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `.<name>.opsdeck-`: temp files of `path`, hidden and never read as the file.
fn temp_prefix(path: &Path) -> String {
    format!(".{}.opsdeck-", file_name(path))
}

/// Removes temp files a crash left between writing and renaming them:
/// they may hold a value that never went live.
fn remove_stale_temps(path: &Path) -> Result<()> {
    let prefix = temp_prefix(path);
    let dir = parent(path);
    let entries = fs::read_dir(dir).map_err(|e| io_error("list", dir, e))?;
    for entry in entries.filter_map(|entry| entry.ok()) {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let stale = entry.path();
            fs::remove_file(&stale).map_err(|e| io_error("remove", &stale, e))?;
        }
    }
    Ok(())
}

/// Puts `backup`'s content back at `path` (atomically, keeping `path`'s
/// mode and owner): an env file's backup, or a database's.
pub fn restore(path: &Path, backup: &Path) -> Result<()> {
    let mut content = File::open(backup).map_err(|e| io_error("read", backup, e))?;
    replace(path, &mut content)
}

/// Copies the file to `<name>.opsdeck-backup-<UTC timestamp>` next to it,
/// mode 0600, and keeps only the newest `keep` backups. Returns the copy.
/// The copy is written under a temp name and linked into place, so a
/// backup that exists is always complete.
pub fn backup(path: &Path, keep: usize) -> Result<PathBuf> {
    let content = fs::read(path).map_err(|e| io_error("read", path, e))?;
    remove_stale_temps(path)?;
    let tmp = write_temp(path, &mut &content[..], None, "backup")
        .map_err(|e| io_error("write a backup of", path, e))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
    let linked = link_backup(path, &tmp, &stamp);
    let _ = fs::remove_file(&tmp);
    let copy = linked?;
    File::open(parent(path))
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error("write", &copy, e))?;
    super::crash_point("backup:linked");
    prune_backups(path, keep.max(1))?;
    Ok(copy)
}

/// Links `tmp` as the backup named for `stamp`. Two backups within one
/// microsecond get a counter suffix; "…Z" sorts before "…Z-1", so names
/// still sort oldest first.
fn link_backup(path: &Path, tmp: &Path, stamp: &str) -> Result<PathBuf> {
    for attempt in 0..100 {
        let suffix = if attempt == 0 {
            String::new()
        } else {
            format!("-{attempt}")
        };
        let copy = parent(path).join(format!(
            "{}.opsdeck-backup-{stamp}{suffix}",
            file_name(path)
        ));
        match fs::hard_link(tmp, &copy) {
            Ok(()) => return Ok(copy),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("write", &copy, e)),
        }
    }
    Err(io_error(
        "write a backup of",
        path,
        "100 backups already exist for this microsecond",
    ))
}

/// Backups of `path`, oldest first (their names sort by time).
pub fn backups(path: &Path) -> Result<Vec<PathBuf>> {
    let prefix = format!("{}.opsdeck-backup-", file_name(path));
    let dir = parent(path);
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io_error("list", dir, e))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    Ok(found)
}

fn prune_backups(path: &Path, keep: usize) -> Result<()> {
    let all = backups(path)?;
    let excess = all.len().saturating_sub(keep);
    for old in &all[..excess] {
        fs::remove_file(old).map_err(|e| io_error("remove", old, e))?;
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn io_error(verb: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("cannot {verb} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# the app's settings\nGITEA_URL=https://git.example.org\n\nexport SECRET_KEY='old value' # rotated monthly\nQUOTED=\"a b\"\n  INDENTED=x\n";

    #[test]
    fn set_changes_only_that_value() {
        let p = Path::new(".env");
        let out = set(p, FILE, "SECRET_KEY", "new").unwrap();
        assert_eq!(
            out,
            FILE.replace("'old value'", "new"),
            "everything but the value is byte-identical"
        );
        let out = set(p, FILE, "INDENTED", "y").unwrap();
        assert_eq!(out, FILE.replace("INDENTED=x", "INDENTED=y"));
    }

    #[test]
    fn set_appends_a_missing_key() {
        let p = Path::new(".env");
        assert_eq!(set(p, "A=1", "B", "2").unwrap(), "A=1\nB=2\n");
        assert_eq!(set(p, "", "B", "2").unwrap(), "B=2\n");
    }

    #[test]
    fn literals_read_back_as_the_value() {
        let p = Path::new(".env");
        for value in [
            "ghp_0123456789abcdefABCDEF",
            "p@ss w#rd",
            "it's plain",
            "x # not a comment",
            " padded ",
            "$HOME and \\n",
        ] {
            let written = literal(value).unwrap();
            let text = set(p, "A=1\nKEY=old # c\n", "KEY", &written).unwrap();
            assert_eq!(get(p, &text, "KEY").unwrap().unwrap(), value, "{text}");
        }
        assert_eq!(
            literal("abc-123").unwrap(),
            "abc-123",
            "plain values stay bare"
        );
        for refused in [
            "it's $HOME",
            "it's \"quoted\"",
            "a\nb",
            "nul\0",
            "'\\'",
            "ends in \\",
        ] {
            let why = literal(refused).unwrap_err();
            assert!(!why.contains(refused), "{why}");
        }
    }

    #[test]
    fn values_reads_quotes_and_comments() {
        let v = values(Path::new(".env"), FILE).unwrap();
        assert_eq!(
            v,
            vec![
                ("GITEA_URL".into(), "https://git.example.org".into()),
                ("SECRET_KEY".into(), "old value".into()),
                ("QUOTED".into(), "a b".into()),
                ("INDENTED".into(), "x".into()),
            ]
        );
    }

    #[test]
    fn unparseable_lines_are_named() {
        let p = Path::new("/opt/app/.env");
        for (text, line) in [
            ("A=1\nthis is not an assignment\n", 2),
            ("A=1\nB=2\nC='open\n", 3),
            ("1BAD=x\n", 1),
        ] {
            let e = set(p, text, "A", "z").unwrap_err().to_string();
            assert!(e.contains(&format!("line {line}")), "{e}");
            assert!(e.contains("/opt/app/.env"), "{e}");
        }
    }

    #[test]
    fn atomic_write_keeps_mode_and_backups_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, FILE).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let copy = backup(&path, 2).unwrap();
        assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o777, 0o600);
        write_atomically(&path, b"A=2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "A=2\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        for _ in 0..3 {
            backup(&path, 2).unwrap();
        }
        assert_eq!(backups(&path).unwrap().len(), 2, "retention keeps 2");
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("..env.opsdeck-")
            })
            .count();
        assert_eq!(leftovers, 0, "no temp file is left behind");
    }
}
