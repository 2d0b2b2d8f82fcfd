//! What a step of a job *does*, one module per family of steps: run a
//! program ([`run`]) or, in a `command` deploy's recovery, the deploy steps
//! again with the replaced release's values ([`command`]), parameters
//! (of an action, a command sweep, a deploy) checked again as the job
//! starts ([`params`]), git checkouts ([`checkout`]), release directories and
//! the `current` switch ([`release`]), systemd units ([`units`]), the health
//! probe ([`probe`]), env-file and secret edits ([`secret`]; a value entered
//! by hand, [`secret_set`]; key files, [`secret_file`]; the other places a
//! secret lives, [`store`] and [`github`]), sweeps ([`sweep`]), a database
//! put back from a backup ([`restore`]). Each family owns both how its
//! steps are *shown* (the command
//! line printed before a step runs and listed on the job page) and how they
//! are *done*, through the [`Perform`] trait; [`Work`] names every kind of
//! step and `Work::step` is the one `match` over them, so the compiler
//! proves each kind is handled.
//!
//! Layering: `jobs` runs steps in order (queue, locks, recovery, timeouts,
//! cancel, output) and calls down into this layer; steps reach hosts only
//! through `host`, and never import `ops` or `web`. A new kind of step is a
//! struct in its family's module, its `impl Perform`, and one variant here.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use tokio::sync::mpsc;

use crate::config::{App, Config};
use crate::host::Host;
use crate::host::exec::{Ended, command_line as quoted};
use crate::host::secret::ServerKey;
use crate::{Error, Result};

pub mod checkout;
pub mod command;
pub mod github;
pub mod groups;
mod held;
pub(crate) mod millis;
pub mod params;
pub mod probe;
pub mod redact;
pub mod release;
pub mod restore;
pub mod run;
pub mod secret;
pub mod secret_file;
pub mod secret_set;
pub mod store;
pub mod sweep;
pub mod units;

pub use held::Held;
use redact::Redactor;

/// How a step does its work, stored as JSON (tagged by `kind`) in the plan
/// of a queued job, so a job survives a restart exactly as it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    Run(run::Run),
    CheckParams(params::CheckParams),
    RunReplaced(command::RunReplaced),
    Checkout(checkout::Checkout),
    CheckoutPrevious(checkout::CheckoutPrevious),
    MakeRelease(release::MakeRelease),
    SwitchRelease(release::SwitchRelease),
    SwitchBack(release::SwitchBack),
    CleanupReleases(sweep::CleanupReleases),
    Restart(units::Restart),
    Stop(units::Stop),
    WaitActive(units::WaitActive),
    RotateSecret(secret::RotateSecret),
    SetSecret(secret_set::SetSecret),
    RotateFile(secret_file::RotateFile),
    RestoreEnv(secret::RestoreEnv),
    SetWebhookSecret(secret::SetWebhookSecret),
    RestoreWebhookSecret(secret::RestoreWebhookSecret),
    StoreSecret(store::StoreSecret),
    RestoreStore(store::RestoreStore),
    SetGithubHookSecret(github::SetGithubHookSecret),
    RestoreGithubHookSecret(github::RestoreGithubHookSecret),
    Probe(probe::Probe),
    Sweep(sweep::Sweep),
    CheckBackup(restore::CheckBackup),
    KeepDatabase(restore::KeepDatabase),
    PutBackup(restore::PutBackup),
    CheckDatabase(restore::CheckDatabase),
    PutKept(restore::PutKept),
}

impl Work {
    /// The step behind the kind: the one match over every kind of step.
    fn step(&self) -> &dyn Perform {
        match self {
            Work::Run(step) => step,
            Work::CheckParams(step) => step,
            Work::RunReplaced(step) => step,
            Work::Checkout(step) => step,
            Work::CheckoutPrevious(step) => step,
            Work::MakeRelease(step) => step,
            Work::SwitchRelease(step) => step,
            Work::SwitchBack(step) => step,
            Work::CleanupReleases(step) => step,
            Work::Restart(step) => step,
            Work::Stop(step) => step,
            Work::WaitActive(step) => step,
            Work::RotateSecret(step) => step,
            Work::SetSecret(step) => step,
            Work::RotateFile(step) => step,
            Work::RestoreEnv(step) => step,
            Work::SetWebhookSecret(step) => step,
            Work::RestoreWebhookSecret(step) => step,
            Work::StoreSecret(step) => step,
            Work::RestoreStore(step) => step,
            Work::SetGithubHookSecret(step) => step,
            Work::RestoreGithubHookSecret(step) => step,
            Work::Probe(step) => step,
            Work::Sweep(step) => step,
            Work::CheckBackup(step) => step,
            Work::KeepDatabase(step) => step,
            Work::PutBackup(step) => step,
            Work::CheckDatabase(step) => step,
            Work::PutKept(step) => step,
        }
    }

    /// The exact command line the step runs, printed before it runs and
    /// shown on the job page. Environment values are never shown: they may
    /// be secrets.
    pub fn command_line(&self) -> String {
        self.step().command_line()
    }

    /// This step with what the job replaced written in (the commit, the
    /// release), and those words for its title, once `memory` knows them;
    /// None when the step names nothing it replaced.
    pub fn pinned(&self, memory: &Memory) -> Option<(Work, String)> {
        self.step().pinned(memory)
    }

    /// Whether the step needs a value held in memory for its job (see
    /// [`Held`]).
    pub fn holds_input(&self) -> bool {
        self.step().holds_input()
    }

    /// Does the step for `job`, within `bounds`; how it ended.
    pub async fn perform(&self, job: &mut StepJob<'_>, bounds: Bounds) -> Ended {
        self.step().perform(job, bounds).await
    }
}

/// What every kind of step provides.
pub trait Perform: Sync {
    /// The command the step runs or stands for (never a secret value).
    fn command_line(&self) -> String;

    /// A recovery step's values pinned from what the job replaced (see
    /// `Work::pinned`); most steps name nothing they replaced.
    fn pinned(&self, _memory: &Memory) -> Option<(Work, String)> {
        None
    }

    /// Whether the step needs a value its job holds in memory only (a
    /// pasted secret): a job that lost it, queued while opsdeck restarted,
    /// never runs.
    fn holds_input(&self) -> bool {
        false
    }

    /// Does the step. Lines it prints go to `bounds.lines`; it ends within
    /// `bounds.limit`, and as soon as `bounds.stopped` resolves.
    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended>;
}

pub type Lines = mpsc::Sender<crate::host::lines::Lines>;

/// What a step may use of the job it belongs to.
pub struct StepJob<'a> {
    pub config: &'a Config,
    pub db: &'a SqlitePool,
    /// Fingerprints secret values in output and audit rows.
    pub server_key: &'a ServerKey,
    /// Masks the app's env-file values in every line printed; a step that
    /// makes a new value teaches it here before anything could print it.
    pub redactor: &'a Redactor,
    pub id: i64,
    pub app: &'a str,
    /// `OPSDECK_JOB` of the children this job starts (`<instance>:<job>`).
    pub tag: String,
    /// What earlier steps of this job replaced, for its recovery steps.
    pub memory: &'a mut Memory,
    /// `(action, detail)` audit rows the step leaves, recorded by the job
    /// with its actor once the step ended.
    pub audit: Vec<(&'static str, serde_json::Value)>,
}

impl<'a> StepJob<'a> {
    /// Where the job's app runs (this machine if it left the config).
    pub fn host(&self) -> Result<Host> {
        match self.config.app(self.app) {
            Some(app) => Host::of(self.config, app),
            None => Ok(Host::Local),
        }
    }

    /// The machine the job's app runs on, as opsdeck's own account there
    /// (for its units).
    pub fn machine(&self) -> Result<Host> {
        match self.config.app(self.app) {
            Some(app) => Host::machine(self.config, app),
            None => Ok(Host::Local),
        }
    }

    /// The job's app, as the config has it now.
    pub fn app(&self) -> Result<&'a App> {
        self.config
            .app(self.app)
            .ok_or_else(|| Error::Conflict(format!("{} is no longer in the config", self.app)))
    }
}

/// What one job's steps replaced or changed, so its recovery steps can put
/// it back, and the value it was given to hold. Lives as long as the job:
/// a job is never resumed after a restart, so nothing needs storing. One
/// part per family that needs one.
#[derive(Debug, Default)]
pub struct Memory {
    checkout: checkout::Replaced,
    release: release::Replaced,
    secret: secret::Changed,
    restore: restore::Kept,
    /// The value a `set` step writes, until it takes it.
    held: Option<Held>,
}

impl Memory {
    /// The memory of a job that was given `held` to write.
    pub fn holding(held: Option<Held>) -> Memory {
        Memory {
            held,
            ..Memory::default()
        }
    }
}

/// The limits a step runs within.
pub struct Bounds {
    /// This step's time limit.
    pub limit: Duration,
    /// Resolves when the job is asked to stop (cancel, shutdown).
    pub stopped: BoxFuture<'static, ()>,
    pub lines: Lines,
}

impl Bounds {
    /// Runs a step done by opsdeck itself rather than by a child process:
    /// the lines `work` returns are printed, its error becomes the step's
    /// failure sentence.
    pub async fn in_process(self, work: impl Future<Output = Result<Vec<String>>> + Send) -> Ended {
        let done = tokio::select! {
            done = tokio::time::timeout(self.limit, work) => done,
            () = self.stopped => return Ended::Stopped,
        };
        match done {
            Ok(Ok(printed)) => {
                if !printed.is_empty() {
                    let _ = self.lines.send(printed.into_iter().collect()).await;
                }
                Ended::Exited(Some(0))
            }
            Ok(Err(e)) => {
                let _ = self.lines.send(e.public_message().into()).await;
                Ended::Exited(None)
            }
            Err(_) => Ended::TimedOut,
        }
    }
}

/// Prints one line of opsdeck's own into the job output.
pub async fn say(lines: &Lines, line: String) {
    let _ = lines.send(line.into()).await;
}

/// `cd DIR`, quoted, for command lines.
fn cd(dir: &std::path::Path) -> String {
    format!("cd {}", path(dir))
}

/// A path as one quoted word of a command line.
fn path(p: &std::path::Path) -> String {
    quoted(&[p.display().to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queued job's plan is stored as JSON: the shape of each kind of
    /// step is a contract with the jobs a previous version queued.
    #[test]
    fn stored_steps_keep_their_shape() {
        let stored = [
            r#"{"kind":"run","argv":["npm","ci"],"cwd":"/opt/app/frontend","env":{"A":"b"}}"#,
            r#"{"kind":"run_replaced","argv":["cloudron","update","--image","r:{tag}"],"cwd":null,"env":{}}"#,
            r#"{"kind":"run","argv":["wp","cron"],"cwd":null,"env":{},"env_file":"/srv/wp/.env"}"#,
            r#"{"kind":"check_params","action":"promote","values":{"build":"b-42"}}"#,
            r#"{"kind":"check_params","sweep":"pin","values":{"branch":"main"}}"#,
            r#"{"kind":"check_params","deploy":"v2","values":{"note":"hotfix"}}"#,
            r#"{"kind":"checkout","repo":"/opt/app","sha":"0123456789abcdef0123456789abcdef01234567"}"#,
            r#"{"kind":"checkout_previous","repo":"/opt/app"}"#,
            r#"{"kind":"checkout_previous","repo":"/opt/app","sha":"0123456789abcdef0123456789abcdef01234567"}"#,
            r#"{"kind":"switch_back","root":"/srv/app"}"#,
            r#"{"kind":"switch_back","root":"/srv/app","release":"20261206-0133-0123456"}"#,
            r#"{"kind":"cleanup_releases","keep":5}"#,
            r#"{"kind":"restart","units":["app.service"],"sudo":false}"#,
            r#"{"kind":"probe","url":"http://127.0.0.1:8000/health","expect":null,"timeout":30000}"#,
            r#"{"kind":"probe","checks":[{"url":"http://127.0.0.1:8000/health","expect":null,"timeout":30000},{"name":"api","url":"http://127.0.0.1:8000/api","expect":"ok","timeout":5000}]}"#,
            r#"{"kind":"stop","units":["app.service"],"sudo":false}"#,
            r#"{"kind":"check_backup","sweep":"db-backup","backup":"app-20261203T030000123Z.db"}"#,
            r#"{"kind":"put_kept","sweep":"db-backup"}"#,
            r#"{"kind":"put_kept","sweep":"db-backup","kept":"/b/app-20261203T030000123Z.db"}"#,
            r#"{"kind":"rotate_secret","env_file":"/opt/app/.env","key":"SECRET_KEY","generate":"hex:32","keep_backups":5}"#,
            r#"{"kind":"set_secret","env_file":"/etc/sitg/bot-a.env","key":"GITHUB_TOKEN","keep_backups":5}"#,
            r#"{"kind":"rotate_file","file":"/srv/robot/signing.pem","make":{"key":"rsa:3072"},"keep_backups":5}"#,
            r#"{"kind":"rotate_file","file":"/srv/k.pem","make":{"command":["mint","--pem"]},"keep_backups":2}"#,
            r#"{"kind":"store_secret","key":"S","run":["vault","kv","put","-"],"value":{"from":"env_file","env_file":"/opt/app/.env"}}"#,
            r#"{"kind":"store_secret","key":"S","run":["store"],"value":{"from":"generate","generate":"base64url:32"}}"#,
            r#"{"kind":"set_github_hook_secret","api":"https://api.github.com","repo":"o/r","url":null,"env_file":"/e","key":"K"}"#,
            r#"{"kind":"sweep","sweep":"db-backup","dry_run":false,"previewed":{"job":7,"items":["remove backup /b/x.db"]}}"#,
        ];
        for json in stored {
            let work: Work = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(serde_json::to_string(&work).unwrap(), json);
        }
        // `env` may be absent, as plans written before it existed have it.
        let run: Work =
            serde_json::from_str(r#"{"kind":"run","argv":["true"],"cwd":null}"#).unwrap();
        assert_eq!(run.command_line(), "true");
    }
}
