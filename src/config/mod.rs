//! The `opsdeck.toml` contract (DESIGN.md "The contract"): every section is
//! parsed and validated here, also those that later features act on, so a
//! config that `opsdeck check` accepts today keeps working as features land.
//!
//! `load.rs` reads the TOML into these types (shape, types, unknown keys),
//! `validate.rs` checks what the values mean, `secrets.rs` reads opsdeck's
//! own secrets; every problem names its line and key (`errors.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::actor::Role;

mod duration;
mod errors;
mod load;
mod params;
mod postgres;
mod problems;
mod reader;
mod rotation;
mod secrets;
mod validate;
mod validate_notify;
mod validate_params;
mod validate_secret_places;
mod validate_secrets;
mod validate_sweeps;
mod values;
pub mod words;

pub use duration::parse_duration;
pub use errors::{ConfigError, ConfigErrors, line_col};
pub use params::MAX_VALUE;
pub use postgres::postgres_database;
pub use rotation::{KeyKind, Place, Source};
pub use values::{Generator, HostAddress, SshTarget, parse_schedule, parse_time_zone};

/// A whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub auth: Auth,
    pub roles: Roles,
    pub jobs: Jobs,
    /// `[logs]`: limits of the journal follow hub.
    pub logs: LogLimits,
    /// `[audit]`: where audit rows are copied.
    pub audit: AuditLog,
    /// `[hosts.<name>]`: SSH hosts apps can name in `host`.
    pub hosts: BTreeMap<String, Host>,
    /// `[[app]]`.
    pub apps: Vec<App>,
    /// `[[notify]]`: where events are sent (README "Notifications").
    pub notify: Vec<Notify>,
    /// Where the config was read from (for messages and relative paths).
    pub path: PathBuf,
    /// Problems that do not stop opsdeck (see [`Config::warnings`]).
    warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: String,
    pub public_url: String,
    /// `opsdeck.db` lives here.
    pub data_dir: PathBuf,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("/var/lib/opsdeck"),
            max_body_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub gitea_url: Option<String>,
    pub client_id: Option<String>,
    /// File holding the OAuth2 client secret; `OPSDECK_CLIENT_SECRET` overrides.
    pub client_secret_file: Option<PathBuf>,
    /// File holding a Gitea API token for webhook-secret and branch sweeps;
    /// `OPSDECK_GITEA_TOKEN` overrides.
    pub gitea_token_file: Option<PathBuf>,
    /// File holding a GitHub API token for `github_webhook` secrets;
    /// `OPSDECK_GITHUB_TOKEN` overrides.
    pub github_token_file: Option<PathBuf>,
    /// The GitHub REST API's root (see [`Auth::github_api`]).
    pub github_api: Option<String>,
    pub dev_login: bool,
    /// Sign-out after this long without a request (sign-in's default: 8 h).
    pub session_idle: Option<Duration>,
    /// Sign-out this long after sign-in, active or not (default: 7 days).
    pub session_max: Option<Duration>,
}

/// `[roles]`: who gets which role, as `user:<login>`, `org:<org>` or
/// `team:<org>:<team>` entries.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    pub owner: Vec<String>,
    pub admin: Vec<String>,
    pub operator: Vec<String>,
    pub viewer: Vec<String>,
}

/// `[jobs]`: limits of the job engine.
#[derive(Debug, Clone)]
pub struct Jobs {
    /// Default per-step timeout.
    pub step_timeout: Duration,
    /// Default whole-job timeout.
    pub job_timeout: Duration,
    /// How long running jobs may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long a request waits for its approval before it expires.
    pub approval_ttl: Duration,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            step_timeout: Duration::from_secs(15 * 60),
            job_timeout: Duration::from_secs(60 * 60),
            shutdown_grace: Duration::from_secs(30),
            approval_ttl: Duration::from_secs(60 * 60),
        }
    }
}

/// `[logs]`: how much the log viewers may cost.
#[derive(Debug, Clone)]
pub struct LogLimits {
    /// Concurrent `journalctl` followers (distinct filters) at most.
    pub max_followers: usize,
    /// Concurrent viewers (SSE streams) at most, over all followers.
    pub max_viewers: usize,
    /// Lines shown when a viewer opens the page.
    pub backfill: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_followers: 32,
            max_viewers: 1000,
            backfill: 200,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    /// Also write every audit row to the journal with structured fields
    /// (`OPSDECK_AUDIT_ID`, actor, action, app, outcome), so a central log
    /// keeps a copy opsdeck cannot rewrite.
    pub journal: bool,
}

/// `[hosts.<name>]`: an SSH host apps refer to by name.
#[derive(Debug, Clone)]
pub struct Host {
    /// `ssh://user@host[:port]` or `user@host[:port]`.
    pub address: String,
    pub identity_file: Option<PathBuf>,
    /// The known_hosts file host keys are checked against (strictly).
    pub known_hosts: Option<PathBuf>,
    /// A jump host: another `[hosts.<name>]` name or `user@host[:port]`.
    pub jump: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Checkout,
    Releases,
    Command,
}

impl Strategy {
    pub const ALL: [(&str, Strategy); 3] = [
        ("checkout", Strategy::Checkout),
        ("releases", Strategy::Releases),
        ("command", Strategy::Command),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Checkout => "checkout",
            Strategy::Releases => "releases",
            Strategy::Command => "command",
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub environment: String,
    /// `local`, `ssh://user@host[:port]` or a `[hosts.<name>]` name.
    pub host: String,
    pub repo: Option<PathBuf>,
    pub branch: String,
    pub strategy: Strategy,
    /// `releases`: where `releases/` and `current` live.
    pub path: Option<PathBuf>,
    /// `releases`: how many good releases to keep.
    pub keep: usize,
    /// `releases`: files and directories linked from `<path>/shared`.
    pub shared: Vec<String>,
    pub units: Vec<String>,
    /// Run `systemctl` through `sudo -n`.
    pub sudo: bool,
    /// The account every step of the app runs as (`sudo -n -u user`):
    /// git, builds, actions, sweeps, env-file edits. `None`: opsdeck's own
    /// (or, over SSH, the remote login's).
    pub user: Option<String>,
    /// The group those steps run with (`sudo -g`); the user's own if unset.
    pub group: Option<String>,
    pub env_file: Option<PathBuf>,
    /// `health`: one check (`[app.health]`) or several (`[[app.health]]`);
    /// every one must pass for the app to be healthy.
    pub health: Vec<Health>,
    pub build: Vec<Command>,
    /// `command` strategy: the deploy steps, with `{ref}`, `{sha}`, `{tag}`.
    pub deploy: Vec<Command>,
    /// `command` strategy: the steps that go back to an earlier release
    /// (same placeholders); empty means the deploy steps do.
    pub rollback: Vec<Command>,
    /// `[[app.deploy_param]]` (`command` strategy): values asked for at
    /// each deploy, reaching the deploy steps through their `{name}`.
    pub deploy_params: Vec<Param>,
    pub logs: Option<Logs>,
    /// A branch whose Gitea push webhook deploys it.
    pub auto_deploy: Option<String>,
    /// File with the Gitea webhook secret for `POST /hooks/gitea/{app}`.
    pub webhook_secret_file: Option<PathBuf>,
    /// Per-action minimum roles, overriding DESIGN.md's defaults.
    pub permissions: BTreeMap<String, Role>,
    /// `approval = { deploy = "admin" }`: job kind → the role that must
    /// approve such a request before it runs (README "Approvals").
    pub approval: BTreeMap<String, Role>,
    pub secrets: Vec<Secret>,
    pub sweeps: Vec<Sweep>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone)]
pub struct Health {
    /// What pages call it (default: its URL).
    pub name: Option<String>,
    pub url: String,
    /// Text the response body must contain.
    pub expect: Option<String>,
    pub timeout: Duration,
    /// How often opsdeck probes it in the background (health watch);
    /// `None`: only after deploys and when a page asks.
    pub interval: Option<Duration>,
}

/// `[[notify]]`: a receiver of events, sent through the outbox.
#[derive(Debug, Clone)]
pub struct Notify {
    pub name: String,
    pub url: String,
    pub format: NotifyFormat,
    /// `json`: the HMAC-SHA256 key of the `X-Opsdeck-Signature` header.
    pub secret_file: Option<PathBuf>,
    /// Which of [`NOTIFY_EVENTS`] it gets.
    pub events: Vec<String>,
    /// Only these apps' events; empty: every app's.
    pub apps: Vec<String>,
    /// The wait before the first retry; each next one doubles it (capped).
    pub backoff: Duration,
    /// How many tries before it gives up.
    pub attempts: usize,
}

/// What a `[[notify]]` receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyFormat {
    /// The event as JSON, signed.
    #[default]
    Json,
    /// `{"text": …}`, a Slack incoming webhook.
    Slack,
    /// `{"msgtype": "m.text", "body": …}`, a Matrix message.
    Matrix,
}

impl NotifyFormat {
    pub const ALL: [(&'static str, NotifyFormat); 3] = [
        ("json", NotifyFormat::Json),
        ("slack", NotifyFormat::Slack),
        ("matrix", NotifyFormat::Matrix),
    ];
}

/// The events a `[[notify]]` may ask for.
pub const NOTIFY_EVENTS: [&str; 7] = [
    "job.failed",
    "job.interrupted",
    "deploy.succeeded",
    "approval.requested",
    "health.down",
    "health.up",
    "secret.overdue",
];

/// One argv step (build step, deploy step).
#[derive(Debug, Clone)]
pub struct Command {
    pub run: Vec<String>,
    /// Relative to the app's work tree (or release directory).
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Logs {
    pub units: Vec<String>,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    /// `hex:N`, `base64url:N` or `alnum:N` (see [`Generator`]), `set`, or
    /// for a `file`, a [`KeyKind`]; empty with `generate_with` (see
    /// [`Secret::source`]).
    pub generate: String,
    /// Units restarted after rotation (default: the app's).
    pub units: Option<Vec<String>>,
    pub note: Option<String>,
    pub role: Option<Role>,
    /// The role that must approve its rotation (over the app's `approval`).
    pub approval: Option<Role>,
    pub gitea_webhook: Option<GiteaWebhook>,
    /// Other places the secret lives, rotated in the same job (`secret_places.rs`).
    pub github_webhook: Option<GithubWebhook>,
    pub store: Option<Store>,
    /// Older than this (since its last rotation) it is overdue.
    pub max_age: Option<Duration>,
    /// 5-field cron: rotated then by `system:scheduler` (see [`parse_schedule`]).
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`; default UTC.
    pub timezone: Option<String>,
    /// Rotate once at start when a scheduled rotation was missed while opsdeck was down.
    pub catch_up: bool,
    /// Restore the previous file when restart or probe fails.
    pub restore_on_failure: bool,
    /// How many 0600 backups of the env file to keep next to it.
    pub keep_backups: usize,
    /// The env file holding it, when not the app's `env_file` (one per
    /// bot worker, say).
    pub env_file: Option<PathBuf>,
    /// Its variable in the env file, when not `name` (two bots' env files
    /// may hold the same variable; names are unique per app).
    pub key: Option<String>,
    /// A whole file (a PEM key) instead of a `KEY=value` line.
    pub file: Option<PathBuf>,
    /// For a `file`: an argv whose standard output is the new content.
    pub generate_with: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct GiteaWebhook {
    /// `owner/name` of the Gitea repository whose webhook shares the secret.
    pub repo: String,
}

/// `github_webhook = { repo, url }`: the GitHub repository webhooks that
/// sign their deliveries with the secret.
#[derive(Debug, Clone)]
pub struct GithubWebhook {
    /// `owner/name` of the GitHub repository.
    pub repo: String,
    /// Only the webhooks delivering to this URL; without it, every webhook
    /// of the repository that has a secret.
    pub url: Option<String>,
}

/// `store = { run = [...] }`: a command on the app's host that keeps the
/// secret somewhere else (`cloudron env set`, a vault CLI); it gets the new
/// value on its standard input.
#[derive(Debug, Clone)]
pub struct Store {
    pub run: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKind {
    Releases,
    SqliteBackup,
    PostgresBackup,
    GiteaBranches,
    JobOutput,
    Command,
}

impl SweepKind {
    pub const ALL: [(&str, SweepKind); 6] = [
        ("releases", SweepKind::Releases),
        ("sqlite-backup", SweepKind::SqliteBackup),
        ("postgres-backup", SweepKind::PostgresBackup),
        ("gitea-branches", SweepKind::GiteaBranches),
        ("job-output", SweepKind::JobOutput),
        ("command", SweepKind::Command),
    ];

    /// `sqlite-backup`, `postgres-backup`: its backups can be restored.
    pub fn backs_up(self) -> bool {
        matches!(self, SweepKind::SqliteBackup | SweepKind::PostgresBackup)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(name, _)| name)
    }
}

#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub kind: SweepKind,
    /// `releases`: good releases kept (default: the app's `keep`);
    /// `sqlite-backup`, `postgres-backup`: backups kept (required).
    pub keep: Option<usize>,
    /// `sqlite-backup`: the database file to back up; `postgres-backup`:
    /// a database name or libpq connection string (required).
    pub database: Option<String>,
    /// `sqlite-backup`, `postgres-backup`: where backups go (required).
    pub dir: Option<PathBuf>,
    /// `postgres-backup`: a PGPASSFILE, when peer authentication as the
    /// app's `user` does not do.
    pub passfile: Option<PathBuf>,
    /// `gitea-branches`: `owner/name` (required).
    pub repo: Option<String>,
    /// `gitea-branches`: days a branch may stay merged or idle; `job-output`:
    /// days of job output kept (required for both).
    pub days: Option<u32>,
    /// `gitea-branches`: branches never deleted (besides protected ones).
    pub pinned: Vec<String>,
    /// `command`: the argv (required).
    pub run: Option<Vec<String>>,
    /// `command`: where it runs, absolute or relative to the app's `repo`
    /// (default: the `repo`).
    pub cwd: Option<PathBuf>,
    /// `command`: its time limit (default: `jobs.step_timeout`).
    pub timeout: Option<Duration>,
    /// `command`: the app's env file's variables are in its environment.
    pub env_file: bool,
    /// `[[app.sweep.param]]` (`command`): values asked for when it runs,
    /// each reaching `run` only through its `{name}` placeholder.
    pub params: Vec<Param>,
    /// 5-field cron (see [`parse_schedule`]).
    pub schedule: Option<String>,
    /// IANA time zone of `schedule` (see [`parse_time_zone`]); default UTC.
    pub timezone: Option<String>,
    /// Run once at start when a scheduled run was missed while opsdeck was down.
    pub catch_up: bool,
    pub role: Option<Role>,
    /// The role that must approve a run (over the app's `approval`).
    pub approval: Option<Role>,
}

/// `[[app.action]]`: a predefined command, one button on the dashboard.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub run: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// The app's env file's variables are in its environment.
    pub env_file: bool,
    pub role: Option<Role>,
    /// The role that must approve a run (over the app's `approval`).
    pub approval: Option<Role>,
    /// Shown in the confirmation before it runs.
    pub confirm: Option<String>,
    pub description: Option<String>,
    /// `[[app.action.param]]`: values asked for when it runs, each reaching
    /// `run` only through its `{name}` placeholder.
    pub params: Vec<Param>,
}

/// `[[app.action.param]]`, `[[app.sweep.param]]`, `[[app.deploy_param]]`:
/// one value typed or picked at click time.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its `{name}` in `run` (lowercase letters, digits, `_`).
    pub name: String,
    /// What the form calls it (default: its name).
    pub label: Option<String>,
    pub kind: ParamKind,
    /// A regular expression the whole value must match.
    pub pattern: Option<String>,
    /// `choice`: the values offered.
    pub choices: Vec<String>,
    /// `choice`: an argv run on the app's host; one choice per line printed.
    pub choices_from: Option<Vec<String>>,
    /// `backup`: the backup sweep whose backups are offered
    /// (default: the app's only one).
    pub sweep: Option<String>,
    pub default: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Text,
    Choice,
    Commit,
    Release,
    Backup,
}

impl ParamKind {
    pub const ALL: [(&str, ParamKind); 5] = [
        ("text", ParamKind::Text),
        ("choice", ParamKind::Choice),
        ("commit", ParamKind::Commit),
        ("release", ParamKind::Release),
        ("backup", ParamKind::Backup),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(name, _)| name)
    }
}

impl Config {
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![ConfigError {
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the config file: {e}"),
            }],
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            path: path.to_path_buf(),
            errors,
        };
        let doc = toml_edit::ImDocument::parse(text)
            .map_err(|e| fail(vec![ConfigError::from_syntax(text, &e)]))?;
        let mut problems = problems::Problems::new(text);
        let mut config = load::read(&mut problems, doc.as_table(), path);
        validate::check(&config, &mut problems);
        secrets::check(&config, &mut problems);
        let (errors, warnings) = problems.into_parts();
        if !errors.is_empty() {
            return Err(fail(errors));
        }
        config.warnings = warnings.iter().map(|w| w.display_in(path)).collect();
        Ok(config)
    }

    /// Problems that do not stop opsdeck from starting (a secret file other
    /// users can read, a repository that does not exist yet), one per line,
    /// for `check` and `serve` to print.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

impl App {
    /// Whether the app runs on this machine (`host = "local"`).
    pub fn is_local(&self) -> bool {
        matches!(self.host.parse(), Ok(HostAddress::Local))
    }

    /// The minimum role for `action` (`view`, `logs`, `deploy`, …).
    pub fn required_role(&self, action: &str) -> Role {
        self.permissions
            .get(action)
            .copied()
            .unwrap_or_else(|| Role::default_for(action))
    }

    /// Whether it deploys: from a repository, or with deploy commands of
    /// its own (`command` strategy, even without a repository). An app
    /// that does neither only runs actions.
    pub fn deploys(&self) -> bool {
        self.repo.is_some() || self.strategy == Strategy::Command
    }
}

impl Health {
    /// What pages and job output call the check: its `name`, else its URL.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }
}

impl App {
    /// The backup sweep (`sqlite-backup`, `postgres-backup`) named `name`,
    /// or without a name the app's only one: whose backups a Restore or a
    /// `backup` parameter offers. The error says why there is none.
    pub fn backup_sweep(&self, name: Option<&str>) -> Result<&Sweep, String> {
        let backups = || self.sweeps.iter().filter(|s| s.kind.backs_up());
        match name {
            Some(name) => backups().find(|s| s.name == name).ok_or_else(|| {
                format!(
                    "{} has no \"sqlite-backup\" or \"postgres-backup\" sweep named {name:?}",
                    self.name
                )
            }),
            None => match backups().collect::<Vec<_>>().as_slice() {
                [only] => Ok(*only),
                [] => Err(format!(
                    "{} has no \"sqlite-backup\" or \"postgres-backup\" sweep whose backups to offer",
                    self.name
                )),
                _ => Err(format!(
                    "{} has several backup sweeps; name one with `sweep = \"…\"`",
                    self.name
                )),
            },
        }
    }

    /// `command` strategy: the steps that put an earlier release back —
    /// `rollback` when given, else `deploy` with that release's values.
    pub fn going_back(&self) -> &[Command] {
        if self.rollback.is_empty() {
            &self.deploy
        } else {
            &self.rollback
        }
    }

    /// The values a release deployed with, and for each deploy parameter
    /// added to the config since, its default (or the empty word): going
    /// back to it never hands a program a `{name}` as written.
    pub fn going_back_values(&self, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut all = values.clone();
        for param in &self.deploy_params {
            all.entry(param.name.clone())
                .or_insert_with(|| param.default.clone().unwrap_or_default());
        }
        all
    }
}

impl Auth {
    /// `github_api`, else GitHub's own (`https://api.github.com`).
    pub fn github_api(&self) -> &str {
        self.github_api
            .as_deref()
            .unwrap_or("https://api.github.com")
    }
}

impl Action {
    /// The minimum role for this button: its own `role`, else the app's
    /// rule for custom actions.
    pub fn required_role(&self, app: &App) -> Role {
        self.role.unwrap_or_else(|| app.required_role("action"))
    }
}
