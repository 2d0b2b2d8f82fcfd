//! The on-call engineer's `journalctl -u … -f`, in the page (DESIGN.md
//! "Logs"): a follow hub that runs one `journalctl --follow` per distinct
//! filter, shared by every viewer of it, and what a viewer may ask.

pub mod file;
mod hub;
pub mod journal;
mod viewer;

pub use hub::Hub;
pub use journal::Entry;
pub use viewer::{Seen, Start, Viewer, earlier};

use std::path::PathBuf;

use crate::config::App;
use crate::error::Quoted;
use crate::{Error, Result};

/// Longest text filter accepted.
const MAX_TEXT: usize = 200;
/// Longest journal cursor accepted (journald's are about 120 bytes).
const MAX_CURSOR: usize = 512;

/// The priorities, as `journalctl --priority` names them, 0 to 7.
pub const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Which entries a viewer sees: validated, so every value reaches
/// `journalctl` as exactly one well-formed argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    /// `ssh://…` or `local`: each host has its own journal.
    pub host: String,
    /// At least one unless `file` is set; sorted, so equal filters share
    /// a follower.
    pub units: Vec<String>,
    /// A file source instead of the journal (one of `logs.files`).
    pub file: Option<PathBuf>,
    /// Entries this important or more (0 emerg … 7 debug).
    pub priority: Option<u8>,
    /// Entries whose message contains this text.
    pub text: Option<String>,
}

impl Filter {
    /// The filter a viewer of `app` asks for: `unit` one of the app's log
    /// units (empty: all of them) or log files, `priority` a number or a
    /// name, `text` any short text.
    pub fn new(app: &App, unit: &str, priority: &str, text: &str) -> Result<Filter> {
        let allowed = log_units(app);
        let files = log_files(app);
        // An app that logs only to files shows its first file by default.
        let picked = match unit.trim() {
            "" if allowed.is_empty() => files.first(),
            unit => files.iter().find(|f| f.as_os_str() == unit),
        };
        if let Some(file) = picked {
            if !priority.trim().is_empty() {
                return Err(Error::BadRequest(format!(
                    "{} is a file: its lines have no priority to filter by",
                    file.display()
                )));
            }
            return Ok(Filter {
                host: app.host.clone(),
                units: Vec::new(),
                file: Some(file.clone()),
                priority: None,
                text: text_filter(text)?,
            });
        }
        if allowed.is_empty() && files.is_empty() {
            return Err(Error::NotFound(format!(
                "{} has no units or files to read logs of (set `units`, `logs.units` or `logs.files`)",
                app.name
            )));
        }
        let mut units = match unit.trim() {
            "" => allowed.to_vec(),
            unit if allowed.iter().any(|u| u == unit) => vec![unit.to_owned()],
            unit => {
                return Err(Error::Forbidden(format!(
                    "{} is not one of the units or log files of {} whose logs opsdeck shows ({})",
                    Quoted(unit),
                    app.name,
                    sources(app).join(", ")
                )));
            }
        };
        units.sort();
        Ok(Filter {
            host: app.host.clone(),
            units,
            file: None,
            priority: priority_level(priority)?,
            text: text_filter(text)?,
        })
    }
}

/// The units whose journal an app's viewers may read: `logs.units`, else
/// the app's `units`.
pub fn log_units(app: &App) -> &[String] {
    match &app.logs {
        Some(logs) if !logs.units.is_empty() => &logs.units,
        _ => &app.units,
    }
}

/// The files an app's viewers may follow: `logs.files`.
pub fn log_files(app: &App) -> &[PathBuf] {
    app.logs.as_ref().map_or(&[], |logs| &logs.files)
}

/// Every source a viewer of `app` may pick: units, then files.
pub fn sources(app: &App) -> Vec<String> {
    let files = log_files(app).iter().map(|f| f.display().to_string());
    log_units(app).iter().cloned().chain(files).collect()
}

fn priority_level(text: &str) -> Result<Option<u8>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(n) = text.parse::<u8>()
        && n <= 7
    {
        return Ok(Some(n));
    }
    PRIORITIES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .map(|n| Some(n as u8))
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "priority {} is not 0 to 7 or one of {}",
                Quoted(text),
                PRIORITIES.join(", ")
            ))
        })
}

fn text_filter(text: &str) -> Result<Option<String>> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > MAX_TEXT {
        return Err(Error::BadRequest(format!(
            "the text filter is longer than {MAX_TEXT} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "the text filter may not contain control characters".into(),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// A cursor from a viewer (`Last-Event-ID`, `after`, `before`): journald's
/// `s=…;i=…;b=…;m=…;t=…;x=…`, hex values only, or a file's `f=…;o=…`.
pub fn cursor(text: &str) -> Result<&str> {
    let text = text.trim();
    if file::Place::parse(text).is_some() {
        return Ok(text);
    }
    let part_ok = |part: &str| {
        part.split_once('=').is_some_and(|(key, value)| {
            ["s", "i", "b", "m", "t", "x"].contains(&key)
                && !value.is_empty()
                && value.chars().all(|c| c.is_ascii_hexdigit())
        })
    };
    let valid = text.len() <= MAX_CURSOR && text.starts_with("s=") && text.split(';').all(part_ok);
    if valid {
        Ok(text)
    } else {
        Err(Error::BadRequest(format!(
            "{} is not a journal cursor",
            Quoted(text)
        )))
    }
}

/// Why this machine's journal can show no line at all — `journalctl` is
/// missing or fails, or the whole journal is empty to opsdeck — so the
/// Logs page warns instead of showing "live" over nothing; `None` when it
/// has entries.
pub async fn journal_problem() -> Option<String> {
    let asked = crate::host::exec::capture(
        &journal::newest_argv(),
        None,
        &std::collections::BTreeMap::new(),
        std::time::Duration::from_secs(3),
    )
    .await;
    match asked {
        Err(e) => Some(format!(
            "This machine cannot run journalctl ({}), so no unit's lines can show here; the units' logs need systemd's journal",
            e.public_message()
        )),
        Ok(out) if out.status != Some(0) => Some(format!(
            "This machine's journalctl fails, so no unit's lines can show here: {}",
            out.stderr.trim()
        )),
        Ok(out) if out.stdout.trim().is_empty() => Some(
            "This machine's journal has no entries for opsdeck: systemd-journald is not running here, or opsdeck's user may not read the journal (add it to the systemd-journal group); no unit's lines can show until then"
                .to_owned(),
        ),
        Ok(_) => None,
    }
}
