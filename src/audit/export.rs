//! Writing rows out as JSON Lines or CSV, streamed in chain order with every
//! chain field, so an export can be verified offline.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{QueryBuilder, SqlitePool};
use tokio::sync::mpsc;

use super::Filter;
use super::chain::{COLUMNS, Record};
use crate::error::Quoted;
use crate::{Error, Result};

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
                "format {} is not jsonl or csv",
                Quoted(other)
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
        // ISO 8601 with milliseconds: what a spreadsheet reads, and still
        // exactly the `at` the row's hash covers.
        iso_time(r.at).as_str(),
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
/// `2026-12-06T02:25:57.651Z` (the JSON Lines export keeps milliseconds).
fn iso_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

pub fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}
