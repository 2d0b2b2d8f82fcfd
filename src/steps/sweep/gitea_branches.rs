//! `gitea-branches`: the RFC app's branch hygiene through the Gitea API —
//! a branch merged more than `days` ago, or without a commit for more than
//! `days`, is deleted; the default branch, protected branches and the
//! sweep's `pinned` ones never are.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Found, Item};
use crate::config::{Config, Sweep};
use crate::host::gitea::Gitea;
use crate::{Error, Result};

fn client(config: &Config) -> Result<Gitea> {
    let base = config.auth.gitea_url.as_deref().ok_or_else(|| {
        Error::Unavailable("this sweep calls the Gitea API, but `auth.gitea_url` is not set".into())
    })?;
    let token = config.gitea_token()?.ok_or_else(|| {
        Error::Unavailable(
            "this sweep calls the Gitea API, but there is no token: set `auth.gitea_token_file` or OPSDECK_GITEA_TOKEN".into(),
        )
    })?;
    Gitea::new(base, token)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) async fn find(config: &Config, sweep: &Sweep) -> Result<Found> {
    let repo = sweep.repo.as_deref().unwrap_or_default();
    let days = i64::from(sweep.days.unwrap_or(0));
    let gitea = client(config)?;
    let default = gitea.default_branch(repo).await?;
    let branches = gitea.branches(repo).await?;
    // The latest merge of each branch (a branch can be merged more than once).
    let mut merged: HashMap<String, DateTime<Utc>> = HashMap::new();
    for pull in gitea.closed_pulls(repo).await? {
        let Some(at) = pull.merged_at.as_deref().and_then(parse_time) else {
            continue;
        };
        if pull.merged {
            let latest = merged.entry(pull.head.branch).or_insert(at);
            *latest = (*latest).max(at);
        }
    }
    let now = Utc::now();
    let mut found = Found::default();
    let mut younger = 0;
    for branch in branches {
        let name = &branch.name;
        let kept = if *name == default {
            Some("the default branch")
        } else if branch.protected {
            Some("protected")
        } else if sweep.pinned.contains(name) {
            Some("pinned")
        } else {
            None
        };
        if let Some(why) = kept {
            found.kept.push(format!("branch {name}: {why}"));
            continue;
        }
        let Some(committed) = parse_time(&branch.commit.timestamp) else {
            found.kept.push(format!(
                "branch {name}: its last commit's time {:?} is not a time",
                branch.commit.timestamp
            ));
            continue;
        };
        // A commit after the merge makes the branch live again.
        let merge = merged.get(name).copied().filter(|m| *m >= committed);
        let last = merge.unwrap_or(committed);
        if (now - last).num_days() > days {
            let age = (now - last).num_days();
            found.items.push(Item::DeleteBranch {
                repo: repo.to_string(),
                branch: name.clone(),
                why: match merge {
                    Some(_) => format!("merged {age} days ago"),
                    None => format!("no commit for {age} days"),
                },
            });
        } else {
            younger += 1;
        }
    }
    if younger > 0 {
        found.kept.push(format!(
            "{younger} branch{} with activity in the last {days} days",
            if younger == 1 { "" } else { "es" }
        ));
    }
    Ok(found)
}

pub(super) async fn delete(config: &Config, repo: &str, branch: &str) -> Result<String> {
    client(config)?.delete_branch(repo, branch).await?;
    Ok(format!("deleted branch {branch} of {repo}"))
}
