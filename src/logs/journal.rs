//! What opsdeck asks `journalctl` and how it reads the answer: the argv
//! for a filter (every user value one validated argument), and journal
//! JSON parsed exactly (MESSAGE may be a string, an array of bytes or null).

use serde::Serialize;

use super::Filter;

/// Longer messages are cut here, with a marker saying how much was cut.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// One journal entry, as viewers get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The journal cursor: the SSE event id, where a viewer resumes.
    #[serde(rename = "c")]
    pub cursor: String,
    /// Microseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub realtime_us: u64,
    /// 0 (emerg) … 7 (debug); 6 when the entry has none.
    #[serde(rename = "p")]
    pub priority: u8,
    /// The unit (or the syslog identifier) that wrote it.
    #[serde(rename = "u")]
    pub unit: String,
    #[serde(rename = "m")]
    pub message: String,
    /// Where the entry sits in its journal's sequence, to drop an entry a
    /// viewer already got when a catch-up and the live follow overlap.
    #[serde(skip)]
    pub seqnum: Option<(String, u64)>,
}

impl Entry {
    /// Whether this entry comes no later than `seen` in the same journal.
    pub fn seen_by(&self, seen: Option<&(String, u64)>) -> bool {
        match (&self.seqnum, seen) {
            (Some((id, n)), Some((seen_id, seen_n))) => id == seen_id && n <= seen_n,
            _ => false,
        }
    }
}

/// Parses one line of `journalctl --output=json`; `None` for a line that
/// is not an entry (journalctl never prints one, but a viewer must not
/// die of it).
pub fn parse(line: &str) -> Option<Entry> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str());
    let cursor = field("__CURSOR")?.to_owned();
    let realtime_us = field("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let priority = field("PRIORITY")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p <= 7)
        .unwrap_or(6);
    let unit = field("_SYSTEMD_UNIT")
        .or_else(|| field("SYSLOG_IDENTIFIER"))
        .or_else(|| field("_COMM"))
        .unwrap_or_default()
        .to_owned();
    let seqnum = match (field("__SEQNUM_ID"), field("__SEQNUM")) {
        (Some(id), Some(n)) => n.parse().ok().map(|n| (id.to_owned(), n)),
        _ => cursor_seqnum(&cursor),
    };
    Some(Entry {
        cursor,
        realtime_us,
        priority,
        unit,
        message: message(value.get("MESSAGE")),
        seqnum,
    })
}

/// The sequence number a cursor names (`s=<seqnum id>;i=<hex seqnum>;…`):
/// older journalctl JSON has no `__SEQNUM` field.
fn cursor_seqnum(cursor: &str) -> Option<(String, u64)> {
    let part = |key: &str| {
        cursor
            .split(';')
            .find_map(|p| p.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let n = u64::from_str_radix(part("i")?, 16).ok()?;
    Some((part("s")?.to_owned(), n))
}

/// MESSAGE as text: journald stores binary or non-UTF-8 messages as an
/// array of bytes, and a field it does not show as null.
fn message(value: Option<&serde_json::Value>) -> String {
    let text = match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(bytes)) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => String::new(),
    };
    truncate(text)
}

pub(super) fn truncate(mut text: String) -> String {
    if text.len() <= MAX_MESSAGE {
        return text;
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" … [{cut} more bytes cut]"));
    text
}

/// Where a `journalctl` run starts reading.
pub enum From<'a> {
    /// The newest `n` entries.
    Last(usize),
    /// Every entry after this cursor, which must match the filter:
    /// journalctl skips the first entry it finds, taking it for the
    /// cursor's own.
    After(&'a str),
    /// Every entry from this place on (the entry there included when it
    /// matches the filter): how a follower starts.
    At(&'a str),
    /// `n` entries before this cursor, newest first (`--reverse`).
    Before(&'a str, usize),
    /// Between two times (Unix seconds), for a download.
    Between(Option<i64>, Option<i64>),
}

/// `journalctl` for `filter`, reading JSON (`--all`: long fields in full,
/// cut by opsdeck instead), starting at `from`, following when `follow`.
pub fn argv(filter: &Filter, from: From<'_>, follow: bool) -> Vec<String> {
    let mut argv: Vec<String> = [
        "journalctl",
        "--output=json",
        "--all",
        "--no-pager",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    argv.extend(filter_args(filter));
    match from {
        From::Last(n) => argv.push(format!("--lines={n}")),
        From::After(cursor) => argv.push(format!("--after-cursor={cursor}")),
        From::At(cursor) => argv.push(format!("--cursor={cursor}")),
        From::Before(cursor, n) => {
            argv.push(format!("--cursor={cursor}"));
            argv.push("--reverse".into());
            argv.push(format!("--lines={n}"));
        }
        From::Between(since, until) => {
            if let Some(since) = since {
                argv.push(format!("--since=@{since}"));
            }
            if let Some(until) = until {
                argv.push(format!("--until=@{until}"));
            }
        }
    }
    if follow {
        argv.push("--follow".into());
    }
    argv
}

/// `journalctl` printing the newest entry of the whole journal, whatever
/// wrote it: where a new follower starts.
pub fn newest_argv() -> Vec<String> {
    [
        "journalctl",
        "--output=json",
        "--no-pager",
        "--quiet",
        "--lines=1",
    ]
    .map(String::from)
    .to_vec()
}

/// `journalctl` printing `filter`'s entries between two times (Unix
/// seconds) as text, as `journalctl -o short-iso` shows them: a download.
pub fn text_argv(filter: &Filter, since: Option<i64>, until: Option<i64>) -> Vec<String> {
    let mut argv = argv(filter, From::Between(since, until), false);
    argv[1] = "--output=short-iso".into();
    argv
}

/// The arguments that select entries: units, priority, text.
fn filter_args(filter: &Filter) -> Vec<String> {
    let mut args: Vec<String> = filter.units.iter().map(|u| format!("--unit={u}")).collect();
    if let Some(priority) = filter.priority {
        args.push(format!("--priority={priority}"));
    }
    if let Some(text) = &filter.text {
        args.push(format!("--grep={}", literal(text)));
    }
    args
}

/// The `journalctl` command an operator would type for `filter`, to copy.
pub fn equivalent(filter: &Filter, follow: bool) -> String {
    if let Some(path) = &filter.file {
        let tail = ["tail", "-F", "-n", "200"].map(str::to_owned);
        let tail =
            crate::host::exec::command_line(&[&tail[..], &[path.display().to_string()]].concat());
        return match &filter.text {
            Some(text) => {
                let grep = ["grep", "-iF", "--", text].map(str::to_owned);
                format!("{tail} | {}", crate::host::exec::command_line(&grep))
            }
            None => tail,
        };
    }
    let mut argv = vec!["journalctl".to_owned()];
    argv.extend(filter_args(filter));
    if follow {
        argv.push("--follow".into());
    }
    crate::host::exec::command_line(&argv)
}

/// `text` as a regular expression matching exactly itself: operators
/// type words, not patterns (`--grep` takes PCRE2).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_may_be_text_bytes_or_null() {
        let line = r#"{"__CURSOR":"s=a;i=1","__REALTIME_TIMESTAMP":"1700000000000000","PRIORITY":"3","_SYSTEMD_UNIT":"web.service","MESSAGE":[104,105,255],"__SEQNUM":"7","__SEQNUM_ID":"a"}"#;
        let entry = parse(line).unwrap();
        assert_eq!(entry.message, "hi\u{fffd}");
        assert_eq!((entry.priority, entry.unit.as_str()), (3, "web.service"));
        assert_eq!(entry.seqnum, Some(("a".into(), 7)));
        let old = parse(r#"{"__CURSOR":"s=5c60;i=1f;b=6f;m=5a;t=66;x=d8","MESSAGE":"x"}"#).unwrap();
        assert_eq!(old.seqnum, Some(("5c60".into(), 31)));
        let null = parse(r#"{"__CURSOR":"x","MESSAGE":null}"#).unwrap();
        assert_eq!((null.message.as_str(), null.priority), ("", 6));
        assert!(parse("not json").is_none());
        assert!(parse(r#"{"MESSAGE":"no cursor"}"#).is_none());
    }

    #[test]
    fn a_very_long_message_is_cut_with_a_marker() {
        let long = format!(
            r#"{{"__CURSOR":"x","MESSAGE":"{}"}}"#,
            "é".repeat(MAX_MESSAGE)
        );
        let entry = parse(&long).unwrap();
        assert!(entry.message.len() < MAX_MESSAGE + 40);
        assert!(
            entry
                .message
                .ends_with(&format!(" … [{} more bytes cut]", MAX_MESSAGE))
        );
    }

    #[test]
    fn text_filters_match_themselves_only() {
        assert_eq!(literal("a.b (x)*"), r"a\.b \(x\)\*");
    }
}
