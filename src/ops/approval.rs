//! Who may decide an approval, and which requests need one (README
//! "Approvals"). The job engine moves the job (`jobs::approval`); this
//! module checks the config's roles and the four-eyes rule, and refuses
//! bad reasons — each refusal a `denied` audit row.

use crate::actor::Role;
use crate::audit::Event;
use crate::auth::Actor;
use crate::config::App;
use crate::error::{MAX_ECHOED, clip};
use crate::jobs::{Decision, Gate, Job};
use crate::{Context, Error, Result};

/// The longest reason kept: a sentence or a short paragraph.
const MAX_REASON: usize = 1000;

/// The gate of a `kind` request on `app`: the approval its action, sweep
/// or secret asks for (`own`), else the app's `approval` for the kind.
/// A request that changes nothing (a dry run) never waits.
pub fn gate(app: &App, kind: &str, own: Option<Role>, mutating: bool) -> Gate {
    match own.or_else(|| app.approval.get(kind).copied()) {
        Some(role) if mutating => Gate::Approval(role),
        _ => Gate::Open,
    }
}

/// A deploy's gate: with `emergency` (a reason), an owner deploys without
/// the approval it needs, audited as such; anyone else is refused (403),
/// and so is an empty reason (400).
pub async fn deploy_gate(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    emergency: Option<&str>,
) -> Result<Gate> {
    let gate = gate(app, "deploy", None, true);
    let (Gate::Approval(role), Some(reason)) = (&gate, emergency) else {
        return Ok(gate);
    };
    ctx.require_role(actor, Some(app), "approval.emergency", Role::Owner)
        .await?;
    let reason = reason_given(ctx, actor, app, "approval.emergency", reason).await?;
    Ok(Gate::Emergency {
        role: *role,
        reason,
    })
}

/// Approves or denies job `id` for `reason`: only someone with the role
/// the request needs, never the person who asked (403, audited `denied`).
pub async fn decide(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    decision: Decision,
    reason: &str,
) -> Result<Job> {
    let job = ctx.jobs.job(id).await?;
    let app = ctx.app(&job.app)?;
    ctx.authorize(actor, Some(app), "view").await?;
    let action = format!("approval.{}", decision.as_str());
    let Some(needed) = job.approver_role() else {
        return Err(Error::Conflict(format!(
            "job {id} needs no approval: it is {}",
            job.state
        )));
    };
    ctx.require_role(actor, Some(app), &action, needed).await?;
    if actor.is(&job.actor) {
        let why = format!(
            "you asked for job {id}; someone else with the {needed} role must {} it",
            decision.as_str()
        );
        ctx.audit
            .refused(Event::new(actor, &action, &app.name).job(id).detail(
                serde_json::json!({"why": "four eyes: the requester cannot decide their own request"}),
            ))
            .await?;
        return Err(Error::Forbidden(why));
    }
    let reason = reason_given(ctx, actor, app, &action, reason).await?;
    ctx.jobs.decide(id, actor, decision, &reason).await
}

/// `reason` trimmed, or 400 (audited `denied`) when it is empty or longer
/// than [`MAX_REASON`].
async fn reason_given(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    action: &str,
    reason: &str,
) -> Result<String> {
    let reason = reason.trim();
    let why = if reason.is_empty() {
        "a reason is required".to_string()
    } else if reason.chars().count() > MAX_REASON {
        format!("the reason is longer than {MAX_REASON} characters")
    } else {
        return Ok(reason.to_string());
    };
    ctx.audit
        .refused(
            Event::new(actor, action, &app.name)
                .detail(serde_json::json!({"why": why, "reason": clip(reason, MAX_ECHOED)})),
        )
        .await?;
    Err(Error::BadRequest(format!("{why}: say why, in a sentence")))
}
