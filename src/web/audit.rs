//! The admin's audit review (issue 8): `/audit` (filters, newest first,
//! keyset pages, the chain's verification status), `/audit/{id}` (one row
//! with its hashes) and the streamed export, `GET /api/audit` — also at
//! `/audit/export` for the page's buttons.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde::Deserialize;

use super::{Moment, Page};
use crate::audit::{self, ChainStatus, FilterInput, Format, Record};
use crate::auth::Actor;
use crate::error::Quoted;
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/audit", get(index))
        .route("/audit/export", get(export))
        .route("/audit/{id}", get(show))
        .route("/api/audit", get(export))
}

/// Rows per page.
const PAGE_SIZE: u32 = 50;

#[derive(Deserialize)]
struct IndexQuery {
    #[serde(flatten)]
    filter: FilterInput,
    #[serde(default)]
    before: String,
}

#[derive(Deserialize)]
struct ExportQuery {
    #[serde(flatten)]
    filter: FilterInput,
    #[serde(default)]
    format: String,
}

/// The chain's status as the page shows it.
struct Banner {
    /// `chain-ok`, `chain-broken` or `chain-pending`.
    class: &'static str,
    text: String,
    /// The first bad row, linked.
    row: Option<i64>,
}

impl Banner {
    fn new(status: ChainStatus) -> Banner {
        match status {
            ChainStatus::Pending => Banner {
                class: "chain-pending",
                text: "The chain is being verified…".into(),
                row: None,
            },
            ChainStatus::Verified { through, at, .. } => Banner {
                class: "chain-ok",
                text: format!(
                    "Chain verified through #{through} at {}",
                    audit::format_time(at)
                ),
                row: None,
            },
            ChainStatus::Broken { problem, at } => Banner {
                class: "chain-broken",
                text: format!(
                    "The audit chain is broken (found {}): {problem}",
                    audit::format_time(at)
                ),
                row: problem.row(),
            },
        }
    }
}

/// One row as the table and the detail page show it.
struct RowView {
    r: Record,
    /// The row above in the table belongs to the same job: the table draws
    /// a job's rows (request, start, release, end) as one group.
    same_job_as_above: bool,
    when: Moment,
    /// The details as pretty JSON (or as stored, if not JSON).
    detail_pretty: String,
}

impl RowView {
    fn new(r: Record) -> RowView {
        let detail_pretty = serde_json::from_str::<serde_json::Value>(&r.detail)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| r.detail.clone());
        RowView {
            same_job_as_above: false,
            when: Moment::from_millis(r.at),
            detail_pretty,
            r,
        }
    }

    /// Denied and failed rows stand out.
    fn class(&self) -> &'static str {
        match self.r.outcome.as_str() {
            "denied" => "row-denied",
            "failed" | "error" => "row-failed",
            _ => "",
        }
    }

    /// The details on one line as people read them — `kind: deploy ·
    /// target: main`, not JSON — shortened for the table (the row's own
    /// page has them in full).
    fn detail_short(&self) -> String {
        let d = match serde_json::from_str::<serde_json::Value>(&self.r.detail) {
            Ok(serde_json::Value::Object(fields)) => fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join(" · "),
            _ => self.r.detail.clone(),
        };
        let mut s: String = d.chars().take(160).collect();
        if d.chars().count() > 160 {
            s.push('…');
        }
        s
    }
}

/// The page's rows, each marked when it continues the job of the row above.
fn in_jobs(rows: Vec<Record>) -> Vec<RowView> {
    let mut above = None;
    rows.into_iter()
        .map(|r| {
            let mut view = RowView::new(r);
            view.same_job_as_above = view.r.job_id.is_some() && view.r.job_id == above;
            above = view.r.job_id;
            view
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/index.html")]
struct IndexPage {
    page: Page,
    banner: Banner,
    input: FilterInput,
    filtered: bool,
    rows: Vec<RowView>,
    /// Query strings of the older page (if any) and of the filter alone.
    older: Option<String>,
    newer: bool,
    query: String,
    outcomes: [&'static str; audit::Outcome::ALL.len()],
    apps: Vec<String>,
    /// What is wrong with the filter, shown under the form it came from.
    problem: Option<String>,
}

async fn index(
    State(ctx): State<Context>,
    actor: Actor,
    page: Page,
    Query(q): Query<IndexQuery>,
) -> Result<Response> {
    ctx.authorize(&actor, None, "audit").await?;
    // A typo keeps the form as typed, with the problem beside it.
    let filter = match q.filter.parse() {
        Ok(filter) => filter,
        Err(Error::BadRequest(problem)) => {
            let page = IndexPage {
                page,
                banner: Banner::new(ctx.audit.chain_status()),
                filtered: true,
                query: query_string(&q.filter),
                input: q.filter,
                rows: Vec::new(),
                older: None,
                newer: false,
                outcomes: audit::Outcome::ALL.map(audit::Outcome::as_str),
                apps: ctx.config.apps.iter().map(|a| a.name.clone()).collect(),
                problem: Some(problem),
            };
            return Ok((axum::http::StatusCode::BAD_REQUEST, page).into_response());
        }
        Err(e) => return Err(e),
    };
    let before = match q.before.trim() {
        "" => None,
        b => Some(b.parse::<i64>().map_err(|_| {
            Error::BadRequest("`before` must be a row number, like before=1200".into())
        })?),
    };
    let (rows, more) = audit::page(&ctx.db, &filter, before, PAGE_SIZE).await?;
    let query = query_string(&q.filter);
    let older = match rows.last() {
        Some(last) if more => Some(format!("{query}&before={}", last.id)),
        _ => None,
    };
    Ok(IndexPage {
        page,
        banner: Banner::new(ctx.audit.chain_status()),
        filtered: filter != audit::Filter::default(),
        input: q.filter,
        rows: in_jobs(rows),
        older,
        newer: before.is_some(),
        query,
        outcomes: audit::Outcome::ALL.map(audit::Outcome::as_str),
        apps: ctx.config.apps.iter().map(|a| a.name.clone()).collect(),
        problem: None,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/show.html")]
struct ShowPage {
    page: Page,
    banner: Banner,
    row: RowView,
    /// Whether this row's hash matches its content, and whether its
    /// prev_hash is the previous row's hash (None: there is no previous row).
    hash_ok: bool,
    link_ok: Option<bool>,
}

async fn show(
    State(ctx): State<Context>,
    actor: Actor,
    page: Page,
    Path(id): Path<String>,
) -> Result<ShowPage> {
    ctx.authorize(&actor, None, "audit").await?;
    let id: i64 = id
        .parse()
        .map_err(|_| Error::NotFound(format!("there is no audit row {}", Quoted(&id))))?;
    let r = audit::get(&ctx.db, id).await?;
    let link_ok = if r.id == 1 {
        Some(r.prev_hash == audit::GENESIS)
    } else {
        match audit::get(&ctx.db, r.id - 1).await {
            Ok(prev) => Some(prev.hash == r.prev_hash),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        }
    };
    Ok(ShowPage {
        page,
        banner: Banner::new(ctx.audit.chain_status()),
        hash_ok: audit::row_hash(&r) == r.hash,
        link_ok,
        row: RowView::new(r),
    })
}

/// `GET /api/audit?actor&app&action&outcome&since&until&q&job&format=jsonl|csv`:
/// the matching rows, oldest first, streamed.
async fn export(
    State(ctx): State<Context>,
    actor: Actor,
    Query(q): Query<ExportQuery>,
) -> Result<Response> {
    ctx.authorize(&actor, None, "audit").await?;
    let filter = q.filter.parse()?;
    let format = Format::parse(q.format.trim())?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let db = ctx.db.clone();
    let writer = tokio::spawn(async move { audit::export(&db, &filter, format, tx).await });
    // A failure midway ends the body with an error, so the client sees a
    // broken download rather than a shorter export that looks complete.
    let failure = futures_util::stream::once(async move {
        match writer.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::error!(error = ?e, "audit export failed");
                Some(Err(std::io::Error::other("the audit export failed")))
            }
            Err(e) => Some(Err(std::io::Error::other(format!(
                "the audit export stopped: {e}"
            )))),
        }
    })
    .filter_map(std::future::ready);
    let body = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(Ok::<_, std::io::Error>)
        .chain(failure);
    let disposition = format!(
        "attachment; filename=\"opsdeck-audit.{}\"",
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The filter as a query string (`actor=ben&outcome=denied`), for links.
fn query_string(f: &FilterInput) -> String {
    [
        ("actor", &f.actor),
        ("app", &f.app),
        ("action", &f.action),
        ("outcome", &f.outcome),
        ("since", &f.since),
        ("until", &f.until),
        ("job", &f.job),
        ("q", &f.q),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k}={}", percent_encode(v.trim())))
    .collect::<Vec<_>>()
    .join("&")
}

fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
