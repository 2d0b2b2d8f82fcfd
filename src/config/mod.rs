//! The `opsdeck.toml` contract (DESIGN.md "The contract"): every section is
//! parsed and validated here, also those that later features act on, so a
//! config that `opsdeck check` accepts today keeps working as features land.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::Role;

mod duration;
pub use duration::parse_duration;

/// A whole, validated configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub roles: Roles,
    #[serde(default)]
    pub jobs: Jobs,
    #[serde(default, rename = "app")]
    pub apps: Vec<App>,
    /// Where the config was read from (for messages and relative paths).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_public_url")]
    pub public_url: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Largest accepted request body.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: default_listen(),
            public_url: default_public_url(),
            data_dir: default_data_dir(),
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_public_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/opsdeck")
}
fn default_max_body() -> usize {
    64 * 1024
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub gitea_url: Option<String>,
    pub client_id: Option<String>,
    /// File holding the OAuth2 client secret; `OPSDECK_CLIENT_SECRET` overrides.
    pub client_secret_file: Option<PathBuf>,
    /// File holding a Gitea API token for webhook-secret and branch sweeps;
    /// `OPSDECK_GITEA_TOKEN` overrides.
    pub gitea_token_file: Option<PathBuf>,
    #[serde(default)]
    pub dev_login: bool,
    #[serde(default, with = "duration::opt")]
    pub session_idle: Option<Duration>,
    #[serde(default, with = "duration::opt")]
    pub session_max: Option<Duration>,
}

/// `[roles]`: who gets which role, as `user:<login>`, `org:<org>` or
/// `team:<org>:<team>` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    #[serde(default)]
    pub owner: Vec<String>,
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub operator: Vec<String>,
    #[serde(default)]
    pub viewer: Vec<String>,
}

/// `[jobs]`: limits of the job engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    /// Default per-step timeout.
    #[serde(default = "default_step_timeout", with = "duration::req")]
    pub step_timeout: Duration,
    /// Default whole-job timeout.
    #[serde(default = "default_job_timeout", with = "duration::req")]
    pub job_timeout: Duration,
    /// How long running jobs may finish after SIGTERM.
    #[serde(default = "default_grace", with = "duration::req")]
    pub shutdown_grace: Duration,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            step_timeout: default_step_timeout(),
            job_timeout: default_job_timeout(),
            shutdown_grace: default_grace(),
        }
    }
}

fn default_step_timeout() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_job_timeout() -> Duration {
    Duration::from_secs(60 * 60)
}
fn default_grace() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[default]
    Checkout,
    Releases,
    Command,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    #[serde(default = "default_environment")]
    pub environment: String,
    #[serde(default = "default_host")]
    pub host: String,
    pub repo: Option<PathBuf>,
    #[serde(default = "default_branch")]
    pub branch: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// `releases`: where `releases/` and `current` live.
    pub path: Option<PathBuf>,
    /// `releases`: how many good releases to keep.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// `releases`: files and directories linked from `<path>/shared`.
    #[serde(default)]
    pub shared: Vec<String>,
    #[serde(default)]
    pub units: Vec<String>,
    /// Run `systemctl` through `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
    pub env_file: Option<PathBuf>,
    pub health: Option<Health>,
    #[serde(default)]
    pub build: Vec<Command>,
    /// `command` strategy: the deploy steps, with `{ref}`, `{sha}`, `{tag}`.
    #[serde(default)]
    pub deploy: Vec<Command>,
    pub logs: Option<Logs>,
    /// A branch whose Gitea push webhook deploys it.
    pub auto_deploy: Option<String>,
    /// File with the Gitea webhook secret for `POST /hooks/gitea/{app}`.
    pub webhook_secret_file: Option<PathBuf>,
    /// Per-action minimum roles, overriding DESIGN.md's defaults.
    #[serde(default)]
    pub permissions: BTreeMap<String, Role>,
    #[serde(default, rename = "secret")]
    pub secrets: Vec<Secret>,
    #[serde(default, rename = "sweep")]
    pub sweeps: Vec<Sweep>,
    #[serde(default, rename = "action")]
    pub actions: Vec<Action>,
}

fn default_environment() -> String {
    "production".into()
}
fn default_host() -> String {
    "local".into()
}
fn default_branch() -> String {
    "main".into()
}
fn default_keep() -> usize {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub url: String,
    /// Text the response body must contain.
    pub expect: Option<String>,
    #[serde(default = "default_health_timeout", with = "duration::req")]
    pub timeout: Duration,
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(30)
}

/// One argv step (build step, deploy step).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub run: Vec<String>,
    /// Relative to the app's work tree (or release directory).
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, with = "duration::opt")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    pub generate: String,
    /// Units restarted after rotation (default: the app's).
    pub units: Option<Vec<String>>,
    pub note: Option<String>,
    pub role: Option<Role>,
    pub gitea_webhook: Option<GiteaWebhook>,
    /// Restore the previous file when restart or probe fails.
    #[serde(default = "yes")]
    pub restore_on_failure: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiteaWebhook {
    pub repo: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepKind {
    Releases,
    SqliteBackup,
    GiteaBranches,
    JobOutput,
    Command,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub name: String,
    pub kind: SweepKind,
    pub keep: Option<usize>,
    pub database: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub repo: Option<String>,
    pub days: Option<u32>,
    #[serde(default)]
    pub pinned: Vec<String>,
    pub run: Option<Vec<String>>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub role: Option<Role>,
}

/// `[[app.action]]`: a predefined command, one button on the dashboard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub name: String,
    pub run: Vec<String>,
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, with = "duration::opt")]
    pub timeout: Option<Duration>,
    pub role: Option<Role>,
    /// Shown in the confirmation before it runs.
    pub confirm: Option<String>,
    pub description: Option<String>,
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
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` only names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![ConfigError::from_toml(text, &e)],
        })?;
        config.path = path.to_path_buf();
        Ok(config)
    }
}

impl App {
    /// The minimum role for `action` (`view`, `logs`, `deploy`, …).
    pub fn required_role(&self, action: &str) -> Role {
        self.permissions
            .get(action)
            .copied()
            .unwrap_or_else(|| Role::default_for(action))
    }
}

/// Every problem found in one config file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

#[derive(Debug, Clone)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `app[0].health.timeout`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn from_toml(text: &str, e: &toml::de::Error) -> ConfigError {
        let (line, column) = e
            .span()
            .map(|s| line_col(text, s.start))
            .unwrap_or((0, 0));
        ConfigError {
            line,
            column,
            key: String::new(),
            message: e.message().to_string(),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.errors {
            let key = if e.key.is_empty() {
                String::new()
            } else {
                format!(" `{}`", e.key)
            };
            writeln!(
                f,
                "{}:{}:{}:{key} {}",
                self.path.display(),
                e.line,
                e.column,
                e.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
