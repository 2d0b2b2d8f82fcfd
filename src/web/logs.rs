//! The Logs page of an app (`/apps/{app}/logs`) and its API: the live
//! stream `GET /api/apps/{app}/logs?unit&priority&grep` (SSE, ids are
//! journal cursors, resuming after `Last-Event-ID` or `after`), "load
//! earlier" (`/api/apps/{app}/logs/earlier?before=<cursor>`) and the
//! download of a selection (`/api/apps/{app}/logs/download`).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::page::{AppCard, sse};
use super::{Json, Page};
use crate::audit::Event;
use crate::auth::Actor;
use crate::config::App;
use crate::logs::{self, Filter, Seen, Start, Viewer, journal};
use crate::{Context, Error, Result};

/// Entries "load earlier" returns at most.
const MAX_EARLIER: usize = 5000;

pub fn router() -> Router<Context> {
    Router::new()
        .route("/apps/{app}/logs", get(page))
        .route("/api/apps/{app}/logs", get(stream))
        .route("/api/apps/{app}/logs/earlier", get(earlier))
        .route("/api/apps/{app}/logs/download", get(download))
}

/// What a viewer asks for; every field optional.
#[derive(Deserialize, Default)]
struct Ask {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    grep: String,
    /// The stream: how many of the newest entries come first.
    backfill: Option<usize>,
    /// The stream: resume after this cursor (as `Last-Event-ID` does).
    after: Option<String>,
    /// Load earlier: entries before this cursor.
    before: Option<String>,
    /// Load earlier: how many.
    lines: Option<usize>,
    /// Download: Unix seconds.
    since: Option<i64>,
    until: Option<i64>,
}

/// The app and the filter `ask` names, if `actor` may read its logs.
async fn filter(ctx: &Context, actor: &Actor, name: &str, ask: &Ask) -> Result<(App, Filter)> {
    let app = ctx.app(name)?;
    ctx.authorize(actor, Some(app), "logs").await?;
    let filter = match Filter::new(app, &ask.unit, &ask.priority, &ask.grep) {
        // A unit the app does not own: someone looking past their app.
        Err(Error::Forbidden(why)) => {
            let event = Event::new(actor, "logs", &app.name)
                .detail(serde_json::json!({"unit": ask.unit, "why": why}));
            ctx.audit.refused(event).await?;
            return Err(Error::Forbidden(why));
        }
        filter => filter?,
    };
    Ok((app.clone(), filter))
}

#[derive(Template, WebTemplate)]
#[template(path = "apps/logs.html")]
struct LogsPage {
    page: Page,
    app: AppCard,
    units: Vec<String>,
    /// Log files (`logs.files`), followed like units.
    files: Vec<String>,
    priorities: [&'static str; 8],
    backfill: usize,
    /// `journalctl -u … -f`, for copying.
    command: String,
    /// Why no unit's line can show (no journal here), said up front.
    journal_problem: Option<String>,
}

async fn page(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
    page: Page,
) -> Result<LogsPage> {
    let (app, filter) = filter(&ctx, &actor, &name, &Ask::default()).await?;
    let units = logs::log_units(&app);
    let journal_problem = if app.is_local() && !units.is_empty() {
        logs::journal_problem().await
    } else {
        None
    };
    Ok(LogsPage {
        journal_problem,
        page,
        app: AppCard::new(&app, &actor),
        units: logs::log_units(&app).to_vec(),
        files: logs::log_files(&app)
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        priorities: logs::PRIORITIES,
        backfill: ctx.config.logs.backfill,
        command: journal::equivalent(&filter, true),
    })
}

async fn stream(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    Query(ask): Query<Ask>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response> {
    let (_, filter) = filter(&ctx, &actor, &name, &ask).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(ask.after.clone())
        .filter(|c| !c.trim().is_empty());
    let start = match resume {
        Some(cursor) => Start::After(logs::cursor(&cursor)?.to_owned()),
        None => Start::Newest(
            ask.backfill
                .unwrap_or(ctx.config.logs.backfill)
                .min(MAX_EARLIER),
        ),
    };
    let viewer = Viewer::open(&ctx.logs, &filter, start).await?;
    let command = journal::equivalent(&filter, true);
    Ok(sse(events(viewer, command)))
}

/// The viewer's entries as SSE: first `event: command`, the shell command
/// that shows the same (the page prints it to copy: one place writes it,
/// here); then `id: <cursor>`, `data: <entry JSON>`; `event: skipped` when
/// it fell behind; `event: ended` when the follow stopped (the browser
/// then reconnects with its last cursor). Entries
/// already waiting go out together, in one chunk of up to 64 KiB: a burst
/// then costs a write per chunk, not per line.
fn events(viewer: Viewer, command: String) -> Body {
    const KEEP_ALIVE: Duration = Duration::from_secs(15);
    const CHUNK: usize = 64 * 1024;
    let first = futures_util::stream::once(async move {
        // Reconnect quickly after a restart of opsdeck or journald.
        let command = serde_json::Value::String(command);
        Ok::<_, Infallible>(Bytes::from(format!(
            "retry: 1000\n\nevent: command\ndata: {command}\n\n"
        )))
    });
    let rest = futures_util::stream::unfold(Some(viewer), move |viewer| async move {
        let mut viewer = viewer?;
        let mut chunk = String::new();
        let mut next = match tokio::time::timeout(KEEP_ALIVE, viewer.seen.recv()).await {
            Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), Some(viewer))),
            Ok(None) => return None,
            Ok(Some(seen)) => seen,
        };
        loop {
            if let Seen::Ended(why) = next {
                let data = serde_json::json!({ "why": why });
                chunk.push_str(&format!("event: ended\ndata: {data}\n\n"));
                return Some((Ok(Bytes::from(chunk)), None));
            }
            event(&next, &mut chunk);
            if chunk.len() >= CHUNK {
                break;
            }
            match viewer.seen.try_recv() {
                Ok(seen) => next = seen,
                Err(_) => break,
            }
        }
        Some((Ok(Bytes::from(chunk)), Some(viewer)))
    });
    Body::from_stream(futures_util::StreamExt::chain(first, rest))
}

/// Appends one entry or "skipped" notice as an SSE event.
fn event(seen: &Seen, out: &mut String) {
    match seen {
        Seen::Entry(entry) => {
            let data = serde_json::to_string(&**entry).unwrap_or_default();
            out.push_str(&format!("id: {}\ndata: {data}\n\n", entry.cursor));
        }
        Seen::Skipped(n) => {
            let data = serde_json::json!({"skipped": n, "text": format!("{n} lines skipped: this viewer fell behind")});
            out.push_str(&format!("event: skipped\ndata: {data}\n\n"));
        }
        // The caller writes it and ends the stream.
        Seen::Ended(_) => {}
    }
}

async fn earlier(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    Query(ask): Query<Ask>,
    actor: Actor,
) -> Result<impl IntoResponse> {
    let (_, filter) = filter(&ctx, &actor, &name, &ask).await?;
    let before = match ask.before.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(cursor) => Some(logs::cursor(cursor)?),
        None => None,
    };
    let n = ask
        .lines
        .unwrap_or(ctx.config.logs.backfill)
        .clamp(1, MAX_EARLIER);
    let entries = logs::earlier(&ctx.logs, &filter, before, n).await?;
    Ok(Json(serde_json::json!({ "entries": entries })))
}

/// The selection as text, streamed as journalctl prints it.
async fn download(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    Query(ask): Query<Ask>,
    actor: Actor,
) -> Result<Response> {
    let (app, filter) = filter(&ctx, &actor, &name, &ask).await?;
    if let (Some(since), Some(until)) = (ask.since, ask.until)
        && since > until
    {
        return Err(Error::BadRequest("since is after until".into()));
    }
    let body = match &filter.file {
        Some(path) => {
            if ask.since.is_some() || ask.until.is_some() {
                return Err(Error::BadRequest(format!(
                    "the lines of {} carry no times to select by: clear since and until",
                    path.display()
                )));
            }
            file_lines(logs::file::Reader::open(path, None, filter.text.as_deref()).await?)
        }
        None => journal_text(&ctx, &filter, ask.since, ask.until)?,
    };
    let file = format!("attachment; filename=\"{}-logs.txt\"", app.name);
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response())
}

/// journalctl's text output of the selection, streamed.
fn journal_text(
    ctx: &Context,
    filter: &Filter,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Body> {
    let mut child = ctx
        .logs
        .spawn(filter, &journal::text_argv(filter, since, until))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("journalctl has no stdout")))?;
    let chunks = futures_util::stream::unfold(Some((child, stdout)), |state| async move {
        let (child, mut stdout) = state?;
        let mut buf = vec![0; 64 * 1024];
        match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, Infallible>(Bytes::from(buf)), Some((child, stdout))))
            }
        }
    });
    Ok(Body::from_stream(chunks))
}

/// A log file's matching lines, streamed in chunks of about 64 KiB.
fn file_lines(reader: logs::file::Reader) -> Body {
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut chunk = String::new();
        while chunk.len() < 64 * 1024 {
            match reader.next_entry().await {
                Ok(Some(entry)) => {
                    chunk.push_str(&entry.message);
                    chunk.push('\n');
                }
                _ => break,
            }
        }
        (!chunk.is_empty()).then(|| (Ok::<_, Infallible>(Bytes::from(chunk)), reader))
    });
    Body::from_stream(chunks)
}
