//! The job resource: its page with live output, its history per app, and
//! its JSON API, text output, SSE stream, cancel, and the approve and deny
//! of a request awaiting approval (README "Approvals").

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};

use super::page::{span, sse};
use super::{Json, Moment, Page};
use crate::auth::Actor;
use crate::host::lines::in_ranges;
use crate::jobs::{Decision, Followed, Follower, Job, Queue, State as JobState};
use crate::ops::approval;
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/jobs/{id}", get(page))
        .route("/jobs/{id}/status", get(status))
        .route("/jobs/{id}/events", get(page_events))
        .route("/jobs/{id}/cancel", post(cancel_form))
        .route("/jobs/{id}/approve", post(approve_form))
        .route("/jobs/{id}/deny", post(deny_form))
        .route("/apps/{app}/jobs", get(history))
        .route("/api/jobs/{id}", get(show))
        .route("/api/jobs/{id}/output", get(output))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/approve", post(approve))
        .route("/api/jobs/{id}/deny", post(deny))
}

/// A job the actor may see (`view` on its app), or 403/404.
async fn visible(ctx: &Context, actor: &Actor, id: i64) -> Result<Job> {
    let job = ctx.jobs.job(id).await?;
    ctx.authorize(actor, ctx.config.app(&job.app), "view")
        .await?;
    Ok(job)
}

/// `GET /api/jobs/{id}` → `{"id","app","kind","state","steps":[…],…}`.
async fn show(State(ctx): State<Context>, Path(id): Path<i64>, actor: Actor) -> Result<Json<Job>> {
    Ok(Json(visible(&ctx, &actor, id).await?))
}

/// `POST /api/jobs/{id}/cancel` → 202 `{"job": id}`.
async fn cancel(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
) -> Result<impl IntoResponse> {
    cancel_job(&ctx, &actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"job": id}))))
}

/// `POST /jobs/{id}/cancel`: the page's Cancel button.
async fn cancel_form(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
) -> Result<Redirect> {
    cancel_job(&ctx, &actor, id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")))
}

async fn cancel_job(ctx: &Context, actor: &Actor, id: i64) -> Result<()> {
    let job = ctx.jobs.job(id).await?;
    ctx.authorize(actor, ctx.config.app(&job.app), "cancel")
        .await?;
    ctx.jobs.cancel(id, actor).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    /// Why: required, shown on the job page, audited.
    #[serde(default)]
    reason: String,
}

/// The approval box's form (its `csrf` among the fields).
#[derive(serde::Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

/// `POST /api/jobs/{id}/approve {"reason"}` → 200, the job (now queued).
async fn approve(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    Json(body): Json<Reason>,
) -> Result<Json<Job>> {
    let job = approval::decide(&ctx, &actor, id, Decision::Approve, &body.reason).await?;
    Ok(Json(job))
}

/// `POST /api/jobs/{id}/deny {"reason"}` → 200, the job (now denied).
async fn deny(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    Json(body): Json<Reason>,
) -> Result<Json<Job>> {
    let job = approval::decide(&ctx, &actor, id, Decision::Deny, &body.reason).await?;
    Ok(Json(job))
}

/// `POST /jobs/{id}/approve`: the job page's Approve button.
async fn approve_form(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    Form(form): Form<ReasonForm>,
) -> Result<Redirect> {
    approval::decide(&ctx, &actor, id, Decision::Approve, &form.reason).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")))
}

/// `POST /jobs/{id}/deny`: the job page's Deny button (confirmed first).
async fn deny_form(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    Form(form): Form<ReasonForm>,
) -> Result<Redirect> {
    approval::decide(&ctx, &actor, id, Decision::Deny, &form.reason).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")))
}

/// `GET /api/jobs/{id}/output`: the output so far as plain text.
async fn output(State(ctx): State<Context>, Path(id): Path<i64>, actor: Actor) -> Result<Response> {
    visible(&ctx, &actor, id).await?;
    let follower = ctx.jobs.output(id, 0).await?;
    let body = stream(follower, |item| match item {
        Followed::Lines { lines, .. } => lines.iter().flat_map(|l| [l.as_str(), "\n"]).collect(),
        Followed::End(_) => String::new(),
    });
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

/// `GET /api/jobs/{id}/events`: SSE, one event per line with the line
/// number as id, resuming after `Last-Event-ID` — a line the program wrote
/// to stderr is a `stderr` event, the others plain messages; then an `end`
/// event with the job's final state.
async fn events(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response> {
    let follower = follow(&ctx, &actor, id, &headers).await?;
    Ok(sse(stream(follower, |item| match item {
        Followed::Lines {
            first,
            lines,
            stderr,
        } => {
            let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 24).sum());
            for (index, (n, line)) in (*first..).zip(lines).enumerate() {
                if in_ranges(stderr, index) {
                    out.push_str("event: stderr\n");
                }
                out.push_str(&format!("id: {n}\ndata: {line}\n\n"));
            }
            out
        }
        Followed::End(state) => format!(
            "event: end\ndata: {}\n\n",
            serde_json::json!({"state": state})
        ),
    })))
}

/// `GET /jobs/{id}/events`: the page's stream for htmx's SSE extension —
/// a `line` event of escaped lines, colours as spans (`ansi.rs`), per batch (id = its last line),
/// each stderr line in a `<span class="stderr">`, then an `end` event
/// carrying the final state badge.
async fn page_events(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response> {
    let follower = follow(&ctx, &actor, id, &headers).await?;
    Ok(sse(stream(follower, |item| match item {
        Followed::Lines {
            first,
            lines,
            stderr,
        } => {
            let last = first + lines.len() as u64 - 1;
            let mut out = format!("event: line\nid: {last}\n");
            for (index, line) in lines.iter().enumerate() {
                out.push_str("data: ");
                if in_ranges(stderr, index) {
                    out.push_str("<span class=\"stderr\">");
                    out.push_str(&super::ansi::to_html(line));
                    out.push_str("</span>\n");
                } else {
                    out.push_str(&super::ansi::to_html(line));
                    out.push('\n');
                }
            }
            // A last, empty data line ends the batch with a newline.
            out.push_str("data: \n\n");
            out
        }
        Followed::End(state) => {
            format!("event: end\ndata: <span class=\"state state-{state}\">{state}</span>\n\n")
        }
    })))
}

/// Follows a visible job's output after the `Last-Event-ID` line.
async fn follow(ctx: &Context, actor: &Actor, id: i64, headers: &HeaderMap) -> Result<Follower> {
    visible(ctx, actor, id).await?;
    ctx.jobs.follow(id, last_event_id(headers)?).await
}

fn last_event_id(headers: &HeaderMap) -> Result<u64> {
    match headers.get("last-event-id") {
        None => Ok(0),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::BadRequest("Last-Event-ID must be a line number".into())),
    }
}

/// A response body made of what `follower` gives, each item formatted by
/// `format`; a comment every 15 s of silence keeps proxies from closing it.
fn stream(follower: Follower, format: fn(&Followed) -> String) -> Body {
    const KEEP_ALIVE: Duration = Duration::from_secs(15);
    let chunks = futures_util::stream::unfold(follower, move |mut follower| async move {
        // `next` is cancel-safe, so the keep-alive timeout loses nothing.
        match tokio::time::timeout(KEEP_ALIVE, follower.next()).await {
            Err(_) => Some((
                Ok::<_, Infallible>(Bytes::from_static(b": keep-alive\n\n")),
                follower,
            )),
            Ok(Ok(Some(item))) => Some((Ok(Bytes::from(format(&item))), follower)),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "job output stream failed");
                None
            }
        }
    });
    Body::from_stream(chunks)
}

/// A job as the pages show it.
struct JobView {
    job: Job,
}

impl JobView {
    fn ended(&self) -> bool {
        self.job.state.is_final()
    }

    fn what(&self) -> String {
        self.job.what()
    }

    fn created(&self) -> Moment {
        Moment::from_millis(self.job.created_at)
    }

    fn elapsed(&self) -> String {
        elapsed(self.job.started_at, self.job.finished_at)
    }

    /// When it started, for the page's running clock.
    fn started(&self) -> Option<Moment> {
        self.job.started_at.map(Moment::from_millis)
    }

    /// It failed, and so did its recovery: the app may be down.
    fn recovery_failed(&self) -> bool {
        self.job
            .summary
            .as_deref()
            .is_some_and(|s| s.ends_with(crate::jobs::RECOVERY_FAILED))
    }

    fn step_elapsed(&self, i: &usize) -> String {
        self.job
            .steps
            .get(*i)
            .map(|s| elapsed(s.started_at, s.finished_at))
            .unwrap_or_default()
    }
}

/// How long something ran (or has been running), as [`span`] writes it.
fn elapsed(started: Option<i64>, finished: Option<i64>) -> String {
    let Some(started) = started else {
        return String::new();
    };
    let end = finished.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    span(end - started)
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/show.html")]
struct JobPage {
    page: Page,
    job: JobView,
    /// The jobs that must end before this queued one starts.
    ahead: Vec<Job>,
    may_cancel: bool,
    /// A deploy's or rollback's ref and exact commit.
    ships: Option<(String, String)>,
    approval: Option<ApprovalBox>,
}

/// The job page's approval box: what the request waits for, or the
/// decision it got.
struct ApprovalBox {
    role: String,
    expires: Moment,
    awaiting: bool,
    /// The viewer may approve or deny it now (the POST checks again).
    may_decide: bool,
    /// The viewer asked for it, so cannot decide it.
    own: bool,
    approved: bool,
    decided_by: Option<String>,
    decided: Option<Moment>,
    reason: Option<String>,
}

impl ApprovalBox {
    fn of(job: &Job, actor: &Actor) -> Option<ApprovalBox> {
        let approval = job.approval.as_ref()?;
        Some(ApprovalBox {
            role: approval.role.clone(),
            expires: Moment::from_millis(approval.expires_at),
            awaiting: job.state == JobState::AwaitingApproval,
            may_decide: job.may_decide(actor),
            own: actor.login == job.actor,
            approved: approval.decided_by.is_some() && job.state != JobState::Denied,
            decided_by: approval.decided_by.clone(),
            decided: approval.decided_at.map(Moment::from_millis),
            reason: approval.reason.clone(),
        })
    }
}

/// `GET /jobs/{id}`.
async fn page(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    page: Page,
) -> Result<JobPage> {
    let job = visible(&ctx, &actor, id).await?;
    let ahead = match job.state {
        JobState::Queued => {
            let Queue { running, waiting } = ctx.jobs.queue(&job.app).await?;
            running
                .into_iter()
                .chain(waiting.into_iter().take_while(|j| j.id != id))
                .collect()
        }
        _ => Vec::new(),
    };
    let may_cancel = may_cancel(&ctx, &actor, &job);
    let ships = crate::releases::of_job(&ctx.db, id).await?;
    let approval = ApprovalBox::of(&job, &actor);
    Ok(JobPage {
        page,
        job: JobView { job },
        ahead,
        may_cancel,
        ships,
        approval,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/status.html")]
struct StatusFragment {
    page: Page,
    job: JobView,
    may_cancel: bool,
}

/// `GET /jobs/{id}/status`: the page's outcome, Cancel button and steps,
/// refreshed while the job runs.
async fn status(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    actor: Actor,
    page: Page,
) -> Result<StatusFragment> {
    let job = visible(&ctx, &actor, id).await?;
    let may_cancel = may_cancel(&ctx, &actor, &job);
    Ok(StatusFragment {
        page,
        job: JobView { job },
        may_cancel,
    })
}

/// Whether to offer the Cancel button (the POST checks again).
fn may_cancel(ctx: &Context, actor: &Actor, job: &Job) -> bool {
    let needed = ctx
        .config
        .app(&job.app)
        .map_or(crate::auth::Role::default_for("cancel"), |a| {
            a.required_role("cancel")
        });
    !job.state.is_final() && actor.role >= needed
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/history.html")]
struct HistoryPage {
    page: Page,
    app: String,
    running: Option<JobView>,
    waiting: Vec<JobView>,
    jobs: Vec<JobView>,
}

/// `GET /apps/{app}/jobs`: who holds the app, who waits, and the last 100 jobs.
async fn history(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    actor: Actor,
    page: Page,
) -> Result<HistoryPage> {
    let config = ctx.app(&app)?;
    ctx.authorize(&actor, Some(config), "view").await?;
    let Queue { running, waiting } = ctx.jobs.queue(&app).await?;
    let jobs = ctx.jobs.recent(Some(&app), 100).await?;
    let view = |job| JobView { job };
    Ok(HistoryPage {
        page,
        app,
        running: running.map(view),
        waiting: waiting.into_iter().map(view).collect(),
        jobs: jobs.into_iter().map(view).collect(),
    })
}
