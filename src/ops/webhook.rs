//! The Gitea push webhook (`POST /hooks/gitea/{app}`): a push to the app's
//! `auto_deploy` branch deploys it, as actor `gitea:<pusher>`.
//!
//! Gitea signs the raw body with the webhook secret: `X-Gitea-Signature` is
//! the bare hex HMAC-SHA256. Nothing in the body is believed before that
//! signature checks out; a missing, empty or wrong one is refused (401) and
//! audited as `denied`. A delivery id seen before is ignored, so Gitea's
//! retries and "Test delivery" clicks never deploy twice.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::audit::{Event, Outcome};
use crate::auth::{Actor, Via};
use crate::config::App;
use crate::ops::deploy;
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
    let app = ctx.app(app)?;
    let secret = secret(app)?;
    let unknown = Actor {
        remote: delivery.remote.clone(),
        ..Actor::system("gitea:webhook")
    };
    if let Err(why) = verify(&secret, delivery.signature, delivery.body) {
        let event = Event::new(&unknown, "webhook", &app.name)
            .outcome(Outcome::Denied)
            .detail(serde_json::json!({"why": why, "delivery": delivery.id}));
        ctx.audit.record(event).await?;
        return Err(Error::Unauthorized(why));
    }
    if delivery.event != Some("push") {
        return Ok(Handled::Ignored(format!(
            "only push events deploy; this is {:?}",
            delivery.event.unwrap_or("an event without X-Gitea-Event")
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
            app.name, push.git_ref
        )));
    }
    if push.after == ZERO_SHA {
        return Ok(Handled::Ignored(format!("branch {branch} was deleted")));
    }
    let id = delivery.id.unwrap_or_default();
    if !id.is_empty() && !first_time(ctx, &app.name, id).await? {
        return Ok(Handled::Ignored(format!(
            "delivery {id} was received before"
        )));
    }
    let actor = Actor {
        login: format!("gitea:{}", pusher_login(push.pusher.as_ref())),
        role: app.required_role("deploy"),
        via: Via::System,
        remote: delivery.remote,
    };
    // The pushed commit itself: a deploy of the branch queued by an earlier
    // push would otherwise make this one a duplicate, and ship the old commit.
    let target = if is_sha(&push.after) {
        push.after.as_str()
    } else {
        branch
    };
    match deploy::request(ctx, &actor, &app.name, target).await {
        Ok(job) => Ok(Handled::Deploying(job)),
        Err(e) => {
            // Not acted on: a redelivery may try again.
            forget(ctx, &app.name, id).await?;
            Err(e)
        }
    }
}

/// The app's webhook secret; an app without one takes no webhooks.
fn secret(app: &App) -> Result<Vec<u8>> {
    let file = app.webhook_secret_file.as_ref().ok_or_else(|| {
        Error::Forbidden(format!(
            "{} takes no webhooks: it has no webhook_secret_file",
            app.name
        ))
    })?;
    // Read at every delivery: a rotation may have just changed it.
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::Unavailable(format!(
            "cannot read the webhook secret of {} ({}): {e}",
            app.name,
            file.display()
        ))
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(Error::Unavailable(format!(
            "the webhook secret file of {} ({}) is empty",
            app.name,
            file.display()
        )));
    }
    Ok(secret.as_bytes().to_vec())
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
