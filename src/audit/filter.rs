//! Which rows: the filter shared by the CLI, the API and the audit page,
//! always bound as data, and the queries that use it.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::Deserialize;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::Outcome;
use super::chain::{COLUMNS, Record};
use crate::error::Quoted;
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
    /// One of `Outcome::ALL`: ok, denied, failed, cancelled or error.
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
    /// Only the rows of this job.
    #[serde(default)]
    #[arg(long, default_value = "", hide_default_value = true)]
    pub job: String,
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
    pub job: Option<i64>,
    pub text: Option<String>,
}

/// What an actor's login may be prefixed with (`auth::Actor`'s kinds).
const ACTOR_PREFIXES: [&str; 3] = ["token:", "gitea:", "system:"];

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
                    "outcome {} is not one of {}",
                    Quoted(o),
                    Outcome::ALL.map(Outcome::as_str).join(", ")
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
            job: match self.job.trim() {
                "" => None,
                j => Some(j.parse().map_err(|_| {
                    Error::BadRequest(format!("job {} is not a job number", Quoted(j)))
                })?),
            },
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
        "{name} {} is not a time: use 2026-12-03, 2026-12-03T08:00 or 2026-12-03T08:00:00Z (UTC)",
        Quoted(v)
    )))
}

impl Filter {
    /// Appends ` WHERE …` (always, so callers can add ` AND …`).
    pub fn push_where(&self, q: &mut QueryBuilder<'_, Sqlite>) {
        q.push(" WHERE 1=1");
        if let Some(app) = &self.app {
            q.push(" AND app = ").push_bind(app.clone());
        }
        // An actor as people type it: `ben` is also `gitea:ben`, `token:ben`
        // or `system:ben`, and `Ben` is `ben`. An `IN` list, so the actor
        // index still answers it.
        if let Some(actor) = &self.actor {
            let mut names = vec![actor.clone()];
            if !actor.contains(':') {
                for prefix in ACTOR_PREFIXES {
                    names.push(format!("{prefix}{actor}"));
                }
            }
            let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
            names.extend(lower);
            names.sort();
            names.dedup();
            q.push(" AND actor IN (");
            let mut list = q.separated(", ");
            for name in names {
                list.push_bind(name);
            }
            q.push(")");
        }
        // An action as people type it: `job` is every `job.*` row (a range,
        // so the action index answers it), and a kind of job (`deploy`,
        // `rollback`, `rotate`, `sweep`, `action`) is every row of those
        // jobs, from request to end.
        if let Some(action) = &self.action {
            let action = action.to_lowercase();
            q.push(" AND (action = ")
                .push_bind(action.clone())
                .push(" OR (action >= ")
                .push_bind(format!("{action}."))
                .push(" AND action < ")
                .push_bind(format!("{action}/"))
                .push(") OR job_id IN (SELECT id FROM jobs WHERE kind = ")
                .push_bind(action)
                .push("))");
        }
        if let Some(o) = self.outcome {
            q.push(" AND outcome = ").push_bind(o.as_str());
        }
        // Times become id bounds: `at` never decreases along the chain (see
        // `chain::append`), so the first row at or after a time, found in
        // the `at` index, bounds the id range and the query stays an id
        // range scan however large the log is.
        if let Some(t) = self.since {
            q.push(" AND id >= ");
            first_id_at_or_after(q, t);
        }
        if let Some(t) = self.until {
            q.push(" AND id < ");
            first_id_at_or_after(q, t);
        }
        if let Some(job) = self.job {
            q.push(" AND job_id = ").push_bind(job);
        }
        if let Some(text) = &self.text {
            // instr() rather than LIKE: `%` and `_` in the search are plain text.
            q.push(" AND instr(lower(detail), ")
                .push_bind(text.to_lowercase())
                .push(") > 0");
        }
    }
}

/// The id of the first row at or after `t` (beyond the last row if none).
fn first_id_at_or_after(q: &mut QueryBuilder<'_, Sqlite>, t: i64) {
    q.push("coalesce((SELECT id FROM audit_events WHERE at >= ")
        .push_bind(t)
        .push(" ORDER BY at, id LIMIT 1), 9223372036854775807)");
}

/// One page of the audit log, newest first: up to `limit` rows older than
/// `before` (keyset pagination: as fast on the last page as on the first).
/// Returns the rows and whether there are older ones.
pub async fn page(
    db: &SqlitePool,
    filter: &Filter,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<Record>, bool)> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_events"));
    filter.push_where(&mut q);
    if let Some(before) = before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let mut rows: Vec<Record> = q.build_query_as().fetch_all(db).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// One row by id, or 404.
pub async fn get(db: &SqlitePool, id: i64) -> Result<Record> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_events WHERE id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("there is no audit row #{id}")))
}
