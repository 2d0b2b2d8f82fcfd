//! Which rows (`Filter`, shared by the CLI, the API and the audit page) and
//! writing them out as JSON Lines or CSV, streamed in chain order with every
//! chain field, so an export can be verified offline.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures_util::TryStreamExt;
use serde::Deserialize;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::mpsc;

use super::Outcome;
use super::chain::{COLUMNS, Record};
use crate::{Error, Result};

/// Filter values as typed in a query string, a form or on the command line
/// (`opsdeck audit export --actor …`); empty means "any".
/// [`FilterInput::parse`] checks them.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
pub struct FilterInput {
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub actor: String,
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub app: String,
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub action: String,
    /// ok, denied, failed or error.
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub outcome: String,
    /// From this time on (2026-12-03, 2026-12-03T08:00 or RFC 3339; UTC).
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub since: String,
    /// Before this time (a date means the end of that day).
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub until: String,
    /// Free text searched in the details.
    #[serde(default)]
    #[arg(
        long = "search",
        value_name = "TEXT",
        default_value = "",
        hide_default_value = true
    )]
    pub q: String,
}

/// A checked filter: every value is only ever bound as data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub actor: Option<String>,
    pub app: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    pub text: Option<String>,
}

/// Longer filter values are refused rather than scanned for.
const MAX_VALUE: usize = 200;

impl FilterInput {
    pub fn parse(&self) -> Result<Filter> {
        let text = |name: &str, v: &str| -> Result<Option<String>> {
            let v = v.trim();
            if v.chars().count() > MAX_VALUE {
                return Err(Error::BadRequest(format!(
                    "the {name} filter is longer than {MAX_VALUE} characters"
                )));
            }
            Ok((!v.is_empty()).then(|| v.to_string()))
        };
        let outcome = match self.outcome.trim() {
            "" => None,
            o => Some(Outcome::parse(o).ok_or_else(|| {
                Error::BadRequest(format!(
                    "outcome {:?} is not one of ok, denied, failed, error",
                    truncate(o)
                ))
            })?),
        };
        let filter = Filter {
            actor: text("actor", &self.actor)?,
            app: text("app", &self.app)?,
            action: text("action", &self.action)?,
            outcome,
            since: parse_time("since", &self.since, false)?,
            until: parse_time("until", &self.until, true)?,
            text: text("search", &self.q)?,
        };
        if filter.since.zip(filter.until).is_some_and(|(s, u)| s >= u) {
            return Err(Error::BadRequest(
                "the time range is empty: `since` must be before `until`".into(),
            ));
        }
        Ok(filter)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Accepts RFC 3339 (`2026-12-03T08:00:00Z`), a browser's local date-time
/// (`2026-12-03T08:00`, taken as UTC) or a date (`2026-12-03`). A date as
/// `until` means the end of that day.
fn parse_time(name: &str, v: &str, end_of_day: bool) -> Result<Option<i64>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.timestamp_millis()));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, format) {
            return Ok(Some(t.and_utc().timestamp_millis()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(Some(
            d.and_time(Default::default()).and_utc().timestamp_millis(),
        ));
    }
    Err(Error::BadRequest(format!(
        "{name} {:?} is not a time: use 2026-12-03, 2026-12-03T08:00 or 2026-12-03T08:00:00Z (UTC)",
        truncate(v)
    )))
}

impl Filter {
    /// Appends ` WHERE …` (always, so callers can add ` AND …`).
    pub fn push_where(&self, q: &mut QueryBuilder<'_, Sqlite>) {
        q.push(" WHERE 1=1");
        for (column, value) in [
            ("actor", &self.actor),
            ("app", &self.app),
            ("action", &self.action),
        ] {
            if let Some(v) = value {
                q.push(format_args!(" AND {column} = "))
                    .push_bind(v.clone());
            }
        }
        if let Some(o) = self.outcome {
            q.push(" AND outcome = ").push_bind(o.as_str());
        }
        if let Some(t) = self.since {
            q.push(" AND at >= ").push_bind(t);
        }
        if let Some(t) = self.until {
            q.push(" AND at < ").push_bind(t);
        }
        if let Some(text) = &self.text {
            // instr() rather than LIKE: `%` and `_` in the search are plain text.
            q.push(" AND instr(lower(detail), ")
                .push_bind(text.to_lowercase())
                .push(") > 0");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "" | "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(Error::BadRequest(format!(
                "format {:?} is not jsonl or csv",
                truncate(other)
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/jsonl; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// Chunks sent to the output are about this big.
const CHUNK: usize = 64 * 1024;

/// Streams the rows matching `filter`, oldest first, to `out` in chunks;
/// returns how many rows were written. Stops early (Ok) when `out` is closed.
pub async fn export(
    db: &SqlitePool,
    filter: &Filter,
    format: Format,
    out: mpsc::Sender<Vec<u8>>,
) -> Result<u64> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_events"));
    filter.push_where(&mut q);
    q.push(" ORDER BY id");
    let mut rows = q.build_query_as::<Record>().fetch(db);
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    if format == Format::Csv {
        buf.extend_from_slice(
            b"id,at,actor,role,action,app,detail,outcome,job_id,remote,prev_hash,hash\n",
        );
    }
    let mut count = 0;
    while let Some(r) = rows.try_next().await? {
        match format {
            Format::Jsonl => {
                serde_json::to_writer(&mut buf, &r).map_err(anyhow::Error::from)?;
                buf.push(b'\n');
            }
            Format::Csv => write_csv(&mut buf, &r),
        }
        count += 1;
        if buf.len() >= CHUNK && out.send(std::mem::take(&mut buf)).await.is_err() {
            return Ok(count);
        }
    }
    if !buf.is_empty() {
        // A closed receiver means the reader went away; nothing to report.
        let _ = out.send(buf).await;
    }
    Ok(count)
}

fn write_csv(buf: &mut Vec<u8>, r: &Record) {
    let job = r.job_id.map(|j| j.to_string()).unwrap_or_default();
    let fields = [
        r.id.to_string().as_str(),
        r.at.to_string().as_str(),
        &r.actor,
        &r.role,
        &r.action,
        &r.app,
        &r.detail,
        &r.outcome,
        &job,
        &r.remote,
        &r.prev_hash,
        &r.hash,
    ]
    .map(csv_field);
    buf.extend_from_slice(fields.join(",").as_bytes());
    buf.push(b'\n');
}

/// RFC 4180: quote a field holding a comma, quote or line break; double quotes.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Unix milliseconds as `2026-12-03 08:00:00 UTC`, for people.
pub fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}
