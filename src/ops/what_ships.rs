//! "What ships" before the Deploy button is pressed (DESIGN.md "Deploy and
//! rollback"): the ref resolved after a fetch, and `git log --oneline
//! current..target` with authors.

use crate::auth::Actor;
use crate::config::Strategy;
use crate::host::Host;
use crate::host::git::{self, Commit, Sha};
use crate::ops::deploy;
use crate::releases;
use crate::{Context, Result};

/// How many commits the page lists; the rest are counted.
const SHOWN: usize = 50;

pub struct WhatShips {
    pub git_ref: String,
    pub target: Sha,
    /// What runs now, when opsdeck knows.
    pub current: Option<Sha>,
    /// Newest first, at most `SHOWN`.
    pub commits: Vec<Commit>,
    /// Commits beyond those listed.
    pub more: usize,
    /// The target is behind what runs: deploying it takes commits away.
    pub going_back: Vec<Commit>,
}

pub async fn preview(ctx: &Context, actor: &Actor, app: &str, git_ref: &str) -> Result<WhatShips> {
    let app = ctx.app(app)?;
    ctx.authorize(actor, Some(app), "deploy").await?;
    git::validate_ref(git_ref)?;
    let repo = deploy::repository(app)?;
    let host = Host::of(&ctx.config, app)?;
    let target = {
        let _one_at_a_time = deploy::PREPARING.lock().await;
        git::fetch(&host, repo).await?;
        git::resolve(&host, repo, git_ref).await?
    };
    let current = match app.strategy {
        // What the release log says is live: there is no work tree to ask.
        Strategy::Releases | Strategy::Command => {
            match releases::current(&ctx.db, &app.name).await? {
                Some(release) if !release.sha.is_empty() => Some(Sha::parse(&release.sha)?),
                _ => None,
            }
        }
        Strategy::Checkout => Some(git::head(&host, repo).await?),
    };
    let (mut commits, going_back) = match &current {
        Some(current) => (
            git::log(&host, repo, current, &target).await?,
            git::log(&host, repo, &target, current).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let more = commits.len().saturating_sub(SHOWN);
    commits.truncate(SHOWN);
    Ok(WhatShips {
        git_ref: git_ref.to_owned(),
        target,
        current,
        commits,
        more,
        going_back,
    })
}
