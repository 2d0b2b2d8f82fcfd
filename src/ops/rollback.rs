//! The Rollback button (DESIGN.md "Deploy and rollback"): by default the
//! newest good release older than the current one, or any good release on
//! request. With the `checkout` strategy it is a deploy of that release's
//! SHA (check out, rebuild, restart, probe, and back again if that fails);
//! with `releases` it switches `current` to that release's directory and
//! restarts — no rebuild; with `command` it runs the app's `rollback` (or
//! `deploy`) steps with that release's values. Once it succeeds, the release it moved away from
//! is marked bad.

use std::collections::BTreeMap;

use crate::auth::Actor;
use crate::config::Strategy;
use crate::host::Host;
use crate::host::git::Sha;
use crate::host::release_tree::ReleaseTree;
use crate::ops::{approval, command, deploy};
use crate::releases::{self, Release, rollback_target};
use crate::{Context, Error, Result};

/// Rolls `app` back to release `to` (or the default target) for `actor`;
/// returns the job id.
pub async fn request(ctx: &Context, actor: &Actor, app: &str, to: Option<i64>) -> Result<i64> {
    let app = ctx.app(app)?;
    ctx.authorize(actor, Some(app), "rollback").await?;
    let _one_at_a_time = deploy::PREPARING.lock().await;
    let log = releases::list(&ctx.db, &app.name, i64::MAX).await?;
    let current = log.iter().find(|r| r.went_live()).ok_or_else(|| {
        Error::Conflict(format!(
            "{} has no release deployed by opsdeck yet, so there is nothing to roll back to",
            app.name
        ))
    })?;
    let target = rollback_target(&log, current, to)?;
    let label = format!("release {} ({})", target.id, target.what());
    let sha = match target.sha.as_str() {
        "" => None,
        sha => Some(Sha::parse(sha)?),
    };
    let host = Host::of(&ctx.config, app)?;
    let shipment = match app.strategy {
        Strategy::Releases => {
            let root = deploy::releases_root(app)?;
            let tree = ReleaseTree::new(host, root);
            let dir = built_release(&tree, target).await?;
            deploy::Shipment {
                plan: deploy::switch_plan(app, root, &dir),
                dir: Some(dir),
                values: BTreeMap::new(),
                params: BTreeMap::new(),
            }
        }
        Strategy::Command => {
            if target.values.is_empty() {
                return Err(Error::Conflict(format!(
                    "release {} ({}) was not deployed with the command strategy, so its values are unknown; deploy it again instead",
                    target.id,
                    target.what()
                )));
            }
            command::rollback(app, &target.values)
        }
        Strategy::Checkout => {
            let repo = deploy::repository(app)?;
            let sha = sha.as_ref().ok_or_else(|| {
                Error::Conflict(format!("release {} has no commit to check out", target.id))
            })?;
            deploy::refuse_dirty_if_idle(ctx, app, &host, repo).await?;
            deploy::Shipment {
                plan: deploy::checkout_plan(app, repo, sha, &label),
                dir: None,
                values: BTreeMap::new(),
                params: BTreeMap::new(),
            }
        }
    };
    let replaces = Some(current.id);
    deploy::submit(
        ctx,
        actor,
        app,
        "rollback",
        &label,
        sha.as_ref(),
        replaces,
        shipment,
        approval::gate(app, "rollback", None, true),
    )
    .await
}

/// The directory of `release`, still on disk: a rollback switches to it.
async fn built_release(tree: &ReleaseTree, release: &Release) -> Result<String> {
    let gone = |why: &str| {
        Error::Conflict(format!(
            "release {} ({}) {why}; deploy {} again instead",
            release.id,
            release.short_sha(),
            release.short_sha()
        ))
    };
    let dir = release
        .dir
        .clone()
        .ok_or_else(|| gone("was not deployed as a release directory"))?;
    if !tree.has(&dir).await? {
        return Err(gone(&format!(
            "has no directory any more ({} was removed)",
            tree.place(&tree.release_dir(&dir))
        )));
    }
    Ok(dir)
}
