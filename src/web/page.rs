//! What the page and resource files share, so none imports another:
//! `Page`, what `templates/base.html` needs on every page — who is signed
//! in (for the nav and the sign-out form) and the CSRF token every form and
//! htmx request carries (every page template has a `page: Page` field and
//! its handler takes `page: Page` as an extractor); `Moment`; what pages
//! show of an app (`AppCard`), of a job (`JobLine`) and of a parameter
//! (`ParamField`), and how a form's parameter values are read
//! (`params_in`, `button_params`); and the answers to a button or an API
//! call that started a job (`show_job`, `accepted`) or opened an event
//! stream (`sse`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Form;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::rejection::FormRejection;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::auth::Csrf;
use super::{Json, assets};
use crate::auth::{Actor, Role};
use crate::config::{Action, App, Param, ParamKind};
use crate::jobs::{Job, State as JobState};
use crate::steps::params::{Choice, Lookup, offered};

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub actor: Option<Actor>,
    pub csrf: String,
}

impl Page {
    /// The URL of a file in `static/`, versioned by its content so browsers
    /// may cache it forever and still see a new release at once.
    pub fn asset(&self, name: &str) -> String {
        static VERSIONS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
            assets::FILES
                .iter()
                .map(|f| (f.name, hex::encode(&Sha256::digest(f.bytes)[..6])))
                .collect()
        });
        match VERSIONS.iter().find(|(n, _)| *n == name) {
            Some((_, version)) => format!("/static/{name}?v={version}"),
            None => format!("/static/{name}"),
        }
    }

    /// Whether the signed-in actor may do a site-wide `action` (`audit`,
    /// `sessions`): the nav hides what would only answer 403.
    pub fn may(&self, action: &str) -> bool {
        self.actor
            .as_ref()
            .is_some_and(|a| a.role >= Role::default_for(action))
    }

    /// The `hx-headers` JSON on `<body>`: htmx sends the CSRF token with
    /// every request it makes, without any inline script.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string()
    }
}

impl Page {
    pub fn from_extensions(extensions: &Extensions) -> Page {
        Page {
            actor: extensions.get::<Actor>().cloned(),
            csrf: extensions
                .get::<Csrf>()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Page, Self::Rejection> {
        Ok(Page::from_extensions(&parts.extensions))
    }
}

/// A moment as pages show it: `<time datetime="{{ iso }}" title="{{ utc }}">
/// {{ ago }}</time>` — how long ago (or how soon), with the absolute time
/// in UTC, the zone of every time opsdeck shows, on hover. `app.js` keeps
/// the relative words current on a page left open (from `/times/ago`).
#[derive(Debug, Clone)]
pub struct Moment {
    pub iso: String,
    pub utc: String,
    pub ago: String,
}

impl Moment {
    /// From Unix milliseconds, as the database stores times.
    pub fn from_millis(ms: i64) -> Moment {
        let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Moment {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: crate::audit::format_time(ms),
            ago: relative(ms, chrono::Utc::now().timestamp_millis()),
        }
    }
}

/// What the pages show of an app.
pub struct AppCard {
    pub name: String,
    pub environment: String,
    pub host: String,
    pub actions: Vec<ActionButton>,
    /// It has units or files to read logs of, and the actor may.
    pub logs: bool,
}

impl AppCard {
    pub fn new(app: &App, actor: &Actor) -> AppCard {
        AppCard {
            name: app.name.clone(),
            environment: app.environment.clone(),
            host: app.host.clone(),
            actions: app
                .actions
                .iter()
                .map(|a| ActionButton::new(app, a, actor))
                .collect(),
            logs: !crate::logs::sources(app).is_empty() && actor.role >= app.required_role("logs"),
        }
    }

    /// The badge colour: production stands out, staging warns, the rest is calm.
    pub fn environment_class(&self) -> &'static str {
        if AppCard::is_production_environment(&self.environment) {
            return "env-production";
        }
        match self.environment.to_ascii_lowercase().as_str() {
            "staging" | "stage" | "preview" => "env-staging",
            _ => "env-other",
        }
    }

    /// Environments where a slip costs users: deploys there ask for the
    /// app's name.
    pub fn is_production_environment(environment: &str) -> bool {
        matches!(
            environment.to_ascii_lowercase().as_str(),
            "production" | "prod" | "live"
        )
    }
}

pub struct ActionButton {
    pub name: String,
    pub description: String,
    /// The question asked before it runs.
    pub confirm: String,
    /// The role it needs, and whether the actor has it: a button the actor
    /// may not press is shown disabled, saying why.
    pub needs: Role,
    pub allowed: bool,
    /// Its config asks a question of its own (`confirm`): the button looks
    /// risky.
    pub risky: bool,
    /// `[[app.action.param]]`: the form's fields.
    pub params: Vec<ParamField>,
    /// It asks for values whose choices only the app's page lists (what a
    /// command prints, the release log, a sweep's backups): elsewhere the
    /// button links there.
    pub ask_on_app_page: bool,
}

/// One field of a form asking for a parameter's value (an action's, a
/// command sweep's, the deploy's), as `templates/_params.html` shows it.
#[derive(Serialize)]
pub struct ParamField {
    pub name: String,
    /// The element's id, unique on the page.
    #[serde(skip)]
    pub id: String,
    pub label: String,
    pub kind: &'static str,
    /// A select of `choices` (`choice`, `release`, `backup`); else a text input,
    /// with `choices` as suggestions (a `commit`'s recent commits).
    pub select: bool,
    pub choices: Vec<Choice>,
    /// Why they could not be listed, if they could not.
    pub choices_error: String,
    pub default: String,
    pub required: bool,
    /// The HTML `pattern` (anchored by the browser, like the server does).
    pub pattern: String,
}

impl ParamField {
    /// The field of `param` in the form whose fields' ids start with
    /// `form`, offering its `choices` (what is looked up comes with
    /// [`ParamField::offer`]).
    pub fn new(param: &Param, form: &str) -> ParamField {
        ParamField {
            name: param.name.clone(),
            id: format!("{form}-{}", param.name),
            label: param.label().to_owned(),
            kind: param.kind.as_str(),
            select: matches!(
                param.kind,
                ParamKind::Choice | ParamKind::Release | ParamKind::Backup
            ),
            choices: param
                .choices
                .iter()
                .map(|c| Choice {
                    value: c.clone(),
                    label: c.clone(),
                })
                .collect(),
            choices_error: String::new(),
            default: param.default.clone().unwrap_or_default(),
            required: param.required,
            pattern: param.pattern.clone().unwrap_or_default(),
        }
    }

    /// Whether what the field offers must be looked up: a command's
    /// output, the release log, the repository's commits, a sweep's backups.
    fn looked_up(param: &Param) -> bool {
        param.choices_from.is_some()
            || matches!(
                param.kind,
                ParamKind::Release | ParamKind::Commit | ParamKind::Backup
            )
    }

    /// Lists what the field offers, if it is looked up; a failure is shown
    /// beside the field.
    pub async fn offer(&mut self, look: &Lookup<'_>, param: &Param) {
        if ParamField::looked_up(param) {
            match offered(look, param).await {
                Ok(choices) => self.choices = choices,
                Err(e) => self.choices_error = e.public_message(),
            }
        }
    }
}

/// The fields of `params` in form `form`, each with what it offers.
pub async fn param_fields(look: &Lookup<'_>, params: &[Param], form: &str) -> Vec<ParamField> {
    let mut fields = Vec::new();
    for param in params {
        let mut field = ParamField::new(param, form);
        field.offer(look, param).await;
        fields.push(field);
    }
    fields
}

/// The parameter values among a page form's fields: those named
/// `param.<name>`, so they cannot collide with the page's own fields.
pub fn params_in(fields: BTreeMap<String, String>) -> BTreeMap<String, String> {
    fields
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("param.")?.to_owned(), v)))
        .collect()
}

/// The parameter values a button's form sent. A button without fields
/// may post no form at all (htmx, curl).
pub fn button_params(
    form: std::result::Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> crate::Result<BTreeMap<String, String>> {
    match form {
        Ok(Form(fields)) => Ok(params_in(fields)),
        Err(FormRejection::InvalidFormContentType(_)) => Ok(BTreeMap::new()),
        Err(e) => Err(crate::Error::BadRequest(format!(
            "the form is unreadable: {e}"
        ))),
    }
}

impl ActionButton {
    fn new(app: &App, action: &Action, actor: &Actor) -> ActionButton {
        let needs = action.required_role(app);
        ActionButton {
            name: action.name.clone(),
            description: action.description.clone().unwrap_or_default(),
            confirm: action.confirm.clone().unwrap_or_else(|| {
                format!("Run {} on {} ({})?", action.name, app.name, app.environment)
            }),
            needs,
            allowed: actor.role >= needs,
            risky: action.confirm.is_some(),
            params: action
                .params
                .iter()
                .map(|p| ParamField::new(p, &format!("param-{}", action.name)))
                .collect(),
            ask_on_app_page: action.params.iter().any(|p| {
                p.choices_from.is_some() || matches!(p.kind, ParamKind::Release | ParamKind::Backup)
            }),
        }
    }
}

impl AppCard {
    /// On the app's own page: lists what each action's fields offer
    /// (what `choices_from` prints on the app's host, releases, commits,
    /// backups),
    /// so every action's form is complete.
    pub async fn list_choices(&mut self, look: &Lookup<'_>, app: &App) {
        for (button, action) in self.actions.iter_mut().zip(&app.actions) {
            for (field, param) in button.params.iter_mut().zip(&action.params) {
                field.offer(look, param).await;
            }
            button.ask_on_app_page = false;
        }
    }
}

/// One job in a list: what ran, who asked, how it stands.
pub struct JobLine {
    pub id: i64,
    /// `action cleanup-sessions`, `deploy main`, …
    pub what: String,
    pub actor: String,
    pub state: JobState,
    pub summary: String,
    pub at: Moment,
}

impl From<&Job> for JobLine {
    fn from(job: &Job) -> JobLine {
        JobLine {
            id: job.id,
            what: job.what(),
            actor: job.actor.clone(),
            state: job.state,
            summary: job.summary.clone().unwrap_or_default(),
            at: Moment::from_millis(job.created_at),
        }
    }
}

/// A request awaiting approval, as the dashboard and the app page list it.
pub struct AwaitingLine {
    pub job: JobLine,
    pub app: String,
    /// The role that approves it.
    pub role: String,
    /// The viewer may approve or deny it (has the role, did not ask).
    pub may_decide: bool,
}

impl AwaitingLine {
    /// The requests awaiting approval on `apps` that `actor` sees: all of
    /// them with `all`, else those `actor` may decide or asked for.
    pub async fn list(
        ctx: &crate::Context,
        actor: &Actor,
        apps: &[&App],
        all: bool,
    ) -> crate::Result<Vec<AwaitingLine>> {
        let mut lines = Vec::new();
        for job in ctx.jobs.awaiting(None).await? {
            if !apps.iter().any(|app| app.name == job.app) {
                continue;
            }
            let may_decide = job.may_decide(actor);
            if all || may_decide || job.actor == actor.login {
                lines.push(AwaitingLine {
                    job: JobLine::from(&job),
                    app: job.app.clone(),
                    role: job
                        .approver_role()
                        .map(Role::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    may_decide,
                });
            }
        }
        Ok(lines)
    }
}

/// After a button started job `job`: its page (`HX-Redirect` for htmx).
pub fn show_job(job: i64, headers: &HeaderMap) -> Response {
    let to = format!("/jobs/{job}");
    if headers.contains_key("hx-request") {
        let mut res = ().into_response();
        if let Ok(value) = HeaderValue::from_str(&to) {
            res.headers_mut().insert("hx-redirect", value);
        }
        return res;
    }
    Redirect::to(&to).into_response()
}

/// `202 {"job": id}` with the job's address.
pub fn accepted(job: i64) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/jobs/{job}"))],
        Json(serde_json::json!({ "job": job })),
    )
}

/// An event stream (job output, a journal) as the answer; never buffered.
pub fn sse(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // nginx: pass events through as they come.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// `ms` as words relative to `now` (both Unix milliseconds): "just now",
/// "3 min ago", "in 5 h", "2 days ago"; beyond two weeks, the UTC date.
/// The one rule: `static/app.js` asks `GET /times/ago` (`times.rs`) for
/// fresh words rather than applying a copy of it.
pub fn relative(ms: i64, now: i64) -> String {
    let seconds = (now - ms) / 1000;
    let (n, unit) = match seconds.abs() {
        s if s < 45 => return "just now".to_owned(),
        s if s < 90 * 60 => ((s + 30) / 60, "min"),
        s if s < 36 * 3600 => ((s + 1800) / 3600, "h"),
        s if s < 14 * 86400 => ((s + 43200) / 86400, "days"),
        _ => {
            let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            return format!("on {}", at.format("%Y-%m-%d"));
        }
    };
    let n = n.max(1);
    if seconds >= 0 {
        format!("{n} {unit} ago")
    } else {
        format!("in {n} {unit}")
    }
}

/// A duration in milliseconds as pages write it: `4.2s`, `3m 07s`,
/// `1h 05m`, `2d 03h` (two units at most; `static/app.js` ticks a running
/// job's clock with the same rule).
pub fn span(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match s {
        s if s < 60 => format!("{:.1}s", ms as f64 / 1000.0),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, s / 60 % 60),
        s => format!("{}d {:02}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::{relative, span};

    #[test]
    fn durations_read_in_two_units_at_most() {
        assert_eq!(span(-5), "0.0s");
        assert_eq!(span(4_240), "4.2s");
        assert_eq!(span(187_000), "3m 07s");
        assert_eq!(span(3_900_000), "1h 05m");
        assert_eq!(span(5_400_000), "1h 30m");
        assert_eq!(span(183_600_000), "2d 03h");
    }

    const MIN: i64 = 60_000;
    const NOW: i64 = 1_796_523_957_000; // 2026-12-06 02:25:57 UTC

    #[test]
    fn times_read_as_how_long_ago_or_how_soon() {
        assert_eq!(relative(NOW, NOW), "just now");
        assert_eq!(relative(NOW - 44_000, NOW), "just now");
        assert_eq!(relative(NOW - 50_000, NOW), "1 min ago");
        assert_eq!(relative(NOW - 3 * MIN, NOW), "3 min ago");
        assert_eq!(relative(NOW - 89 * MIN, NOW), "89 min ago");
        assert_eq!(relative(NOW - 3 * 60 * MIN, NOW), "3 h ago");
        assert_eq!(relative(NOW + 5 * 60 * MIN, NOW), "in 5 h");
        assert_eq!(relative(NOW + 10 * MIN, NOW), "in 10 min");
        assert_eq!(relative(NOW - 36 * 60 * MIN, NOW), "2 days ago");
        assert_eq!(relative(NOW - 13 * 24 * 60 * MIN, NOW), "13 days ago");
    }

    #[test]
    fn old_times_show_their_utc_date() {
        assert_eq!(relative(NOW - 20 * 24 * 60 * MIN, NOW), "on 2026-11-16");
    }
}
