//! The release log of each app: what was deployed or rolled back to, by
//! whom, when, by which job, how it ended, and which releases are bad;
//! and the rule that picks a rollback's target from it. Deploys and
//! rollbacks (`ops`) write it; the `releases` sweep's step reads it.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::SqlitePool;

use crate::actor::Actor;
use crate::host::git::Sha;
use crate::jobs::State;
use crate::{Error, Result};

/// One deploy or rollback, as the app page and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub id: i64,
    pub app: String,
    pub job: i64,
    /// `deploy` or `rollback`.
    pub kind: String,
    /// As requested: a branch, tag or commit.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub actor: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Its job's state: `succeeded` means it went live.
    pub state: State,
    /// Rolled away from, automatically or by a rollback; never a rollback target.
    pub bad: bool,
    /// `releases` strategy: its directory under `<path>/releases/`.
    pub dir: Option<String>,
    /// `command` strategy: what its deploy steps ran with (`ref`, `sha`,
    /// `tag`); empty for the other strategies.
    pub values: BTreeMap<String, String>,
}

impl Release {
    /// Live once, and not rolled away from.
    pub fn good(&self) -> bool {
        self.state == State::Succeeded && !self.bad
    }

    /// Whether its job succeeded: it went live (and may be live still).
    pub fn went_live(&self) -> bool {
        self.state == State::Succeeded
    }

    /// Counts it as live: the job that made it is the one asking, and
    /// has passed the health check.
    pub fn count_as_live(&mut self) {
        self.state = State::Succeeded;
    }

    /// The 7-character SHA people read.
    pub fn short_sha(&self) -> &str {
        self.sha.get(..7).unwrap_or(&self.sha)
    }

    /// What people call it: its short SHA, or with the `command`
    /// strategy and no repository (no commit), its tag.
    pub fn what(&self) -> &str {
        match self.values.get("tag") {
            Some(tag) if self.sha.is_empty() => tag,
            _ => self.short_sha(),
        }
    }

    /// What a `release` parameter passes for it: its directory under
    /// `releases/` (`releases` strategy), its tag (`command`), else its
    /// full commit.
    pub fn param_value(&self) -> &str {
        match (&self.dir, self.values.get("tag")) {
            (Some(dir), _) => dir,
            (None, Some(tag)) => tag,
            (None, None) => &self.sha,
        }
    }

    /// Whether `other` runs the same thing: the same values (`command`
    /// strategy), else the same commit.
    pub fn runs_same(&self, other: &Release) -> bool {
        if self.values.is_empty() && other.values.is_empty() {
            self.sha == other.sha
        } else {
            self.values == other.values
        }
    }

    /// "succeeded", "failed, rolled back", "queued", … for the history.
    pub fn outcome(&self) -> String {
        match (self.state, self.bad) {
            (State::Succeeded, true) => "succeeded, later rolled back".into(),
            (State::Succeeded, false) => "succeeded".into(),
            (state, true) => format!("{state}, rolled back"),
            (state, false) => state.to_string(),
        }
    }
}

/// What a new row records.
pub(crate) struct NewRelease<'a> {
    pub app: &'a str,
    pub job: i64,
    pub kind: &'a str,
    pub git_ref: &'a str,
    /// None: a `command` app without a repository.
    pub sha: Option<&'a Sha>,
    pub actor: &'a Actor,
    /// The plan's step count: recovery steps are numbered from there.
    pub recovery_step: usize,
    pub replaces: Option<i64>,
    pub dir: Option<&'a str>,
    pub values: &'a BTreeMap<String, String>,
    /// The commit's committer time (Unix milliseconds), if known: where
    /// its lead time starts (`insights`).
    pub committed_at: Option<i64>,
}

pub(crate) async fn record(db: &SqlitePool, new: NewRelease<'_>) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO releases (app, job_id, kind, ref, sha, actor, created_at, recovery_step, replaces, dir, vals, committed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(new.app)
    .bind(new.job)
    .bind(new.kind)
    .bind(new.git_ref)
    .bind(new.sha.map_or("", Sha::as_str))
    .bind(&new.actor.login)
    .bind(chrono::Utc::now().timestamp_millis())
    .bind(i64::try_from(new.recovery_step).unwrap_or(i64::MAX))
    .bind(new.replaces)
    .bind(new.dir)
    .bind(
        (!new.values.is_empty())
            .then(|| serde_json::to_string(new.values))
            .transpose()
            .map_err(anyhow::Error::from)?,
    )
    .bind(new.committed_at)
    .fetch_one(db)
    .await?;
    Ok(id)
}

type Row = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    bool,
    Option<String>,
    Option<String>,
);

/// The app's releases, newest first.
pub async fn list(db: &SqlitePool, app: &str, limit: i64) -> Result<Vec<Release>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.id, r.app, r.job_id, r.kind, r.ref, r.sha, r.actor, r.created_at, j.state,
                EXISTS (SELECT 1 FROM job_steps s
                         WHERE s.job_id = r.job_id AND s.idx >= r.recovery_step
                           AND s.started_at IS NOT NULL)
                OR EXISTS (SELECT 1 FROM releases b JOIN jobs bj ON bj.id = b.job_id
                            WHERE b.replaces = r.id AND bj.state = 'succeeded'),
                r.dir, r.vals
         FROM releases r JOIN jobs j ON j.id = r.job_id
         WHERE r.app = ? ORDER BY r.id DESC LIMIT ?",
    )
    .bind(app)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(release).collect()
}

/// The ref and the exact commit job `job` deploys (or rolls back to), if
/// it is a deploy or a rollback: what an approver is shown ships.
pub async fn of_job(db: &SqlitePool, job: i64) -> Result<Option<(String, String)>> {
    Ok(
        sqlx::query_as("SELECT ref, sha FROM releases WHERE job_id = ?")
            .bind(job)
            .fetch_optional(db)
            .await?,
    )
}

/// The release that is live now: the newest one whose job succeeded.
pub async fn current(db: &SqlitePool, app: &str) -> Result<Option<Release>> {
    Ok(list(db, app, i64::MAX)
        .await?
        .into_iter()
        .find(Release::went_live))
}

fn release(row: Row) -> Result<Release> {
    let (id, app, job, kind, git_ref, sha, actor, created_at, state, bad, dir, values) = row;
    let state = State::parse(&state).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("release {id}: unknown job state {state:?}"))
    })?;
    let values = match values {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            Error::Internal(anyhow::anyhow!("release {id}: unreadable values: {e}"))
        })?,
        None => BTreeMap::new(),
    };
    Ok(Release {
        id,
        app,
        job,
        kind,
        git_ref,
        sha,
        actor,
        created_at,
        state,
        bad,
        dir,
        values,
    })
}

/// A release whose job is still waiting.
pub(super) struct Queued {
    pub job: i64,
    pub git_ref: String,
    pub actor: String,
    /// When it was asked for (Unix milliseconds).
    pub at: i64,
}

/// The `kind` (deploy, rollback) of `app` to commit `sha` still waiting,
/// if there is one; without a commit (a `command` app without a
/// repository), to the same `git_ref`.
pub(super) async fn queued_to(
    db: &SqlitePool,
    app: &str,
    kind: &str,
    sha: Option<&Sha>,
    git_ref: &str,
) -> Result<Option<Queued>> {
    let row: Option<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT r.job_id, r.ref, r.actor, j.created_at FROM releases r JOIN jobs j ON j.id = r.job_id
         WHERE r.app = ? AND r.kind = ? AND r.sha = ? AND (r.sha <> '' OR r.ref = ?)
           AND j.state IN ('queued', 'awaiting_approval')
         ORDER BY r.id LIMIT 1",
    )
    .bind(app)
    .bind(kind)
    .bind(sha.map_or("", Sha::as_str))
    .bind(git_ref)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(job, git_ref, actor, at)| Queued {
        job,
        git_ref,
        actor,
        at,
    }))
}

/// The release directories deploys of `app` made or are about to make.
pub(crate) async fn dirs(db: &SqlitePool, app: &str) -> Result<Vec<String>> {
    let dirs = sqlx::query_scalar(
        "SELECT dir FROM releases WHERE app = ? AND kind = 'deploy' AND dir IS NOT NULL",
    )
    .bind(app)
    .fetch_all(db)
    .await?;
    Ok(dirs)
}

/// Release `to`, or by default the newest good release older than `current`.
pub fn rollback_target<'a>(
    log: &'a [Release],
    current: &Release,
    to: Option<i64>,
) -> Result<&'a Release> {
    let Some(id) = to else {
        return log
            .iter()
            .find(|r| r.id < current.id && r.good() && !r.runs_same(current))
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "there is no good release older than the current one (release {}) to roll back to",
                    current.id
                ))
            });
    };
    let chosen = log
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| Error::NotFound(format!("there is no release {id} of this app")))?;
    if chosen.runs_same(current) {
        return Err(Error::Conflict(format!(
            "release {id} ({}) is what runs now",
            chosen.what()
        )));
    }
    if !chosen.good() {
        return Err(Error::Conflict(format!(
            "release {id} ({}) is not a good release ({}); choose one that went live and was not rolled back",
            chosen.what(),
            chosen.outcome()
        )));
    }
    Ok(chosen)
}
