//! An opsdeck built through the library, with a temp data directory and a
//! config of the test's own, for tests of the job engine and its pages.

use std::path::{Path, PathBuf};

use opsdeck::Context;
use opsdeck::auth::{Actor, Role, Via};
use opsdeck::jobs::{Followed, State};

pub struct Deck {
    pub ctx: Context,
    pub dir: tempfile::TempDir,
}

/// The `[server]` section pointing at `dir`, then `apps` (TOML).
pub fn config_text(dir: &Path, apps: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n{apps}",
        dir.join("data").display().to_string()
    )
}

impl Deck {
    pub async fn start(apps: &str) -> Deck {
        let dir = tempfile::tempdir().unwrap();
        Deck::start_in(dir, apps).await
    }

    /// Starts (or restarts) on an existing directory.
    pub async fn start_in(dir: tempfile::TempDir, apps: &str) -> Deck {
        let path = dir.path().join("opsdeck.toml");
        let text = config_text(
            dir.path(),
            &apps.replace("$DIR", &dir.path().display().to_string()),
        );
        std::fs::write(&path, &text).unwrap();
        let config = opsdeck::config::Config::load(&path).unwrap();
        let ctx = Context::start(config).await.unwrap();
        Deck { ctx, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs an action as `alice` (operator).
    pub async fn run(&self, app: &str, action: &str) -> opsdeck::Result<i64> {
        opsdeck::ops::actions::run(&self.ctx, &actor("alice", Role::Operator), app, action).await
    }

    /// Reads the job's output until it ends: (lines, final state).
    pub async fn wait(&self, job: i64) -> (Vec<String>, State) {
        output(&self.ctx, job).await
    }

    /// Reads the job's output until a line satisfies `found`; returns it.
    pub async fn wait_for_line(&self, job: i64, found: impl Fn(&str) -> bool) -> String {
        let mut follower = self.ctx.jobs.follow(job, 0).await.unwrap();
        loop {
            match follower.next().await.unwrap() {
                Some(Followed::Lines { lines, .. }) => {
                    if let Some(line) = lines.into_iter().find(|l| found(l)) {
                        return line;
                    }
                }
                other => panic!("job {job} ended before the expected line: {other:?}"),
            }
        }
    }

    /// The audit rows of a job: `(action, actor, outcome)`.
    pub async fn audit_of(&self, job: i64) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT action, actor, outcome FROM audit_events WHERE job_id = ? ORDER BY id",
        )
        .bind(job)
        .fetch_all(&self.ctx.db)
        .await
        .unwrap()
    }
}

pub fn actor(login: &str, role: Role) -> Actor {
    Actor {
        login: login.into(),
        role,
        via: Via::Token,
        remote: "127.0.0.1".into(),
    }
}

/// Whether process `pid` is gone (a zombie waiting for its reaper counts as gone).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Every line job `job` printed, in order, and how it ended (waits for it).
pub async fn output(ctx: &opsdeck::Context, job: i64) -> (Vec<String>, State) {
    let mut follower = ctx.jobs.follow(job, 0).await.unwrap();
    let mut lines = Vec::new();
    loop {
        match follower.next().await.unwrap() {
            Some(Followed::Lines {
                first,
                lines: batch,
                ..
            }) => {
                assert_eq!(
                    first as usize,
                    lines.len() + 1,
                    "lines arrive in order, none missing"
                );
                lines.extend(batch);
            }
            Some(Followed::End(state)) => return (lines, state),
            None => panic!("the output ended without the job's end"),
        }
    }
}
