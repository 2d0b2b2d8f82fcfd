//! The Gitea push webhook (`POST /hooks/gitea/{app}`): a push to the app's
//! `auto_deploy` branch deploys it, as actor `gitea:<pusher>`.
//!
//! Gitea signs the raw body with the webhook secret: `X-Gitea-Signature` is
//! the bare hex HMAC-SHA256. Nothing in the body is believed before that
//! signature checks out; a missing, empty or wrong one is refused (401) and
//! audited as `denied`, with the same answer as for an app that does not
//! exist or takes no webhooks. A delivery id seen before is ignored, so
//! Gitea's retries and "Test delivery" clicks never deploy twice.
//!
//! The signature covers the body only, so a captured delivery can be
//! posted again with a new delivery id: the pushed commit is deployed only
//! while it still is the branch's tip (`deploy::request_push`), and an old
//! one is answered `stale push`.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::audit::Event;
use crate::auth::{Actor, Via};
use crate::config::App;
use crate::error::{MAX_ECHOED, Quoted, clip};
use crate::ops::deploy::{self, Pushed};
use crate::{Context, Error, Result};

/// What Gitea sent, as the HTTP layer received it.
pub struct Delivery<'a> {
    /// `X-Gitea-Event`.
    pub event: Option<&'a str>,
    /// `X-Gitea-Delivery`.
    pub id: Option<&'a str>,
    /// `X-Gitea-Signature`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
    /// The client address, for the audit row.
    pub remote: String,
}

/// What became of a delivery that was let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    Deploying(i64),
    Ignored(String),
}

/// The parts of Gitea's push payload opsdeck reads.
#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    pusher: Option<Pusher>,
}

#[derive(Deserialize)]
struct Pusher {
    #[serde(default)]
    login: String,
    #[serde(default)]
    username: String,
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

pub async fn receive(ctx: &Context, app: &str, delivery: Delivery<'_>) -> Result<Handled> {
    let app = let_in(ctx, app, &delivery).await?;
    if delivery.event != Some("push") {
        return Ok(Handled::Ignored(format!(
            "only push events deploy; this is {}",
            Quoted(delivery.event.unwrap_or("an event without X-Gitea-Event"))
        )));
    }
    let push: Push = serde_json::from_slice(delivery.body)
        .map_err(|e| Error::BadRequest(format!("the push payload is not what Gitea sends: {e}")))?;
    let Some(branch) = app.auto_deploy.as_deref() else {
        return Ok(Handled::Ignored(format!(
            "{} has no auto_deploy branch",
            app.name
        )));
    };
    if push.git_ref != format!("refs/heads/{branch}") {
        return Ok(Handled::Ignored(format!(
            "{} deploys pushes to {branch} only; this push is to {}",
            app.name,
            clip(&push.git_ref, MAX_ECHOED)
        )));
    }
    if push.after == ZERO_SHA {
        return Ok(Handled::Ignored(format!("branch {branch} was deleted")));
    }
    if !is_sha(&push.after) {
        return Err(Error::BadRequest(format!(
            "the push's `after` is {}, not a commit SHA",
            Quoted(&push.after)
        )));
    }
    let id = delivery.id.unwrap_or_default();
    if !id.is_empty() && !first_time(ctx, &app.name, id).await? {
        return Ok(Handled::Ignored(format!(
            "delivery {} was received before",
            clip(id, MAX_ECHOED)
        )));
    }
    let actor = Actor {
        login: format!("gitea:{}", pusher_login(push.pusher.as_ref())),
        role: app.required_role("deploy"),
        via: Via::System,
        remote: delivery.remote,
    };
    // The pushed commit itself, not the branch: a deploy of the branch
    // queued by an earlier push would otherwise make this one a duplicate.
    match deploy::request_push(ctx, &actor, &app.name, branch, &push.after).await {
        Ok(Pushed::Deploying(job)) => Ok(Handled::Deploying(job)),
        Ok(Pushed::Stale { tip }) => Ok(Handled::Ignored(format!(
            "stale push: {} is not the tip of {branch} any more (it is {}); nothing deployed",
            &push.after[..7],
            tip.short()
        ))),
        Err(e) => {
            // Not acted on: a redelivery may try again.
            forget(ctx, &app.name, id).await?;
            Err(e)
        }
    }
}

/// The app a delivery is for, once its signature checks out with that
/// app's secret. An unknown app, an app that takes no webhooks and a bad
/// signature get one and the same answer, so that app names cannot be
/// probed without the secret; the audit row (bounded per address, see
/// `Audit::refused`) says which it was.
async fn let_in<'c>(ctx: &'c Context, name: &str, delivery: &Delivery<'_>) -> Result<&'c App> {
    let app = ctx.config.app(name);
    let why = match app {
        None => format!("there is no app named {}", Quoted(name)),
        Some(app) => match secret(app) {
            Err(why) => why,
            Ok(None) => format!(
                "{} takes no webhooks: it has no webhook_secret_file",
                app.name
            ),
            Ok(Some(secret)) => match verify(&secret, delivery.signature, delivery.body) {
                Ok(()) => return Ok(app),
                Err(why) => why,
            },
        },
    };
    let known = app.map_or("", |app| app.name.as_str());
    let event = Event::anonymous("webhook", known, &delivery.remote)
        .detail(serde_json::json!({"app": name, "why": why, "delivery": delivery.id}));
    ctx.audit.refused(event).await?;
    Err(Error::Unauthorized(
        "this delivery does not verify: X-Gitea-Signature must be the HMAC-SHA256 of the body \
         with the secret of this app's webhook; nothing was done"
            .into(),
    ))
}

/// The app's webhook secret; `None` for an app that takes no webhooks.
/// A file that cannot be read or is empty refuses the delivery like a bad
/// signature (the operator reads why in the audit log; the sender learns
/// nothing about the app).
fn secret(app: &App) -> Result<Option<Vec<u8>>, String> {
    let Some(file) = app.webhook_secret_file.as_ref() else {
        return Ok(None);
    };
    // Read at every delivery: a rotation may have just changed it.
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read the webhook secret of {} ({}): {e}",
            app.name,
            file.display()
        )
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!(
            "the webhook secret file of {} ({}) is empty",
            app.name,
            file.display()
        ));
    }
    Ok(Some(secret.as_bytes().to_vec()))
}

/// Checks Gitea's bare-hex HMAC-SHA256 of `body`, in constant time.
fn verify(secret: &[u8], signature: Option<&str>, body: &[u8]) -> Result<(), String> {
    let signature = signature.map(str::trim).unwrap_or_default();
    if signature.is_empty() {
        return Err(
            "the delivery has no X-Gitea-Signature; set the webhook's secret in Gitea".into(),
        );
    }
    let given = hex::decode(signature).map_err(|_| "X-Gitea-Signature is not hex".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| "the webhook secret cannot key an HMAC".to_string())?;
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| {
        "X-Gitea-Signature does not match: the secret in Gitea differs from opsdeck's".to_string()
    })
}

/// Records delivery `id`; false when it was recorded before.
async fn first_time(ctx: &Context, app: &str, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT OR IGNORE INTO webhook_deliveries (app, delivery, received_at) VALUES (?, ?, ?)",
    )
    .bind(app)
    .bind(id)
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(&ctx.db)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn forget(ctx: &Context, app: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM webhook_deliveries WHERE app = ? AND delivery = ?")
        .bind(app)
        .bind(id)
        .execute(&ctx.db)
        .await?;
    Ok(())
}

/// The pusher's Gitea login, if it looks like one (it names the actor).
fn pusher_login(pusher: Option<&Pusher>) -> String {
    let login = pusher
        .map(|p| {
            if p.login.is_empty() {
                &p.username
            } else {
                &p.login
            }
        })
        .map(String::as_str)
        .unwrap_or_default();
    let plausible = !login.is_empty()
        && login.len() <= 64
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if plausible {
        login.to_owned()
    } else {
        "unknown".into()
    }
}

fn is_sha(text: &str) -> bool {
    text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn only_the_right_signature_of_the_exact_body_passes() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(b"s3cret", body);
        assert_eq!(verify(b"s3cret", Some(&good), body), Ok(()));
        assert!(verify(b"s3cret", Some(&good), b"{}").is_err());
        assert!(verify(b"other", Some(&good), body).is_err());
        for missing in [None, Some(""), Some("  ")] {
            let why = verify(b"s3cret", missing, body).unwrap_err();
            assert!(why.contains("no X-Gitea-Signature"), "{why}");
        }
        assert!(
            verify(b"s3cret", Some("zz"), body)
                .unwrap_err()
                .contains("not hex")
        );
    }

    #[test]
    fn a_pusher_login_that_is_not_one_becomes_unknown() {
        let pusher = |login: &str| Pusher {
            login: login.into(),
            username: String::new(),
        };
        assert_eq!(pusher_login(Some(&pusher("ben"))), "ben");
        assert_eq!(pusher_login(Some(&pusher("a b;c"))), "unknown");
        assert_eq!(pusher_login(None), "unknown");
    }
}
