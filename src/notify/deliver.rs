//! The deliverer: sends due outbox rows, one at a time, for as long as
//! opsdeck runs. A failed try waits `backoff`, then twice that, … (at most
//! [`MAX_WAIT`]) until `attempts` tries failed; each delivery and each
//! giving up is audited. A crash between a send and its row's update sends
//! it again after the restart: receivers dedupe on `X-Opsdeck-Delivery`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::SqlitePool;

use super::store::{self, Delivery};
use crate::audit::{Audit, Event, Outcome};
use crate::auth::Actor;
use crate::config::{Config, Notify, NotifyFormat};

/// How often the outbox is looked at: how late a new event may leave.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two tries.
const MAX_WAIT: Duration = Duration::from_secs(60 * 60);
/// How long a receiver may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends due rows until the process ends (also those a previous run left).
pub async fn deliver_forever(config: std::sync::Arc<Config>, db: SqlitePool, audit: Audit) {
    let client = match reqwest::Client::builder().timeout(SEND_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client: no notification will be sent");
            return;
        }
    };
    loop {
        match store::due(&db, 50).await {
            Ok(rows) => {
                for row in rows {
                    if let Err(e) = deliver(&config, &db, &audit, &client, &row).await {
                        tracing::error!(delivery = row.id, error = %e, "cannot record a notification's delivery");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the notification outbox"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One try of `row`, recorded and, when it ends the row, audited.
async fn deliver(
    config: &Config,
    db: &SqlitePool,
    audit: &Audit,
    client: &reqwest::Client,
    row: &Delivery,
) -> crate::Result<()> {
    let target = config.notify.iter().find(|t| t.name == row.target);
    let sent = match target {
        Some(target) => send(config, client, target, row).await,
        None => Err(format!(
            "there is no [[notify]] named {:?} in the config any more",
            row.target
        )),
    };
    let attempt = row.attempts + 1;
    let now = chrono::Utc::now().timestamp_millis();
    let most = target.map_or(0, |t| i64::try_from(t.attempts).unwrap_or(i64::MAX));
    let system = Actor::system("system:notify");
    let event = |action: &str| {
        let event = Event::new(&system, action, &row.app);
        match row.job_id {
            Some(job) => event.job(job),
            None => event,
        }
    };
    match sent {
        Ok(()) => {
            store::tried(db, row.id, "delivered", now, None).await?;
            audit
                .record(event("notify.deliver").detail(serde_json::json!({
                    "delivery": row.id, "to": row.target, "event": row.event, "attempts": attempt,
                })))
                .await?;
        }
        Err(error) if attempt >= most => {
            store::tried(db, row.id, "failed", now, Some(&error)).await?;
            audit
                .record(event("notify.give_up").outcome(Outcome::Failed).detail(
                    serde_json::json!({
                        "delivery": row.id, "to": row.target, "event": row.event,
                        "attempts": attempt, "error": error,
                    }),
                ))
                .await?;
        }
        Err(error) => {
            let wait = target.map_or(MAX_WAIT, |t| backoff(t.backoff, attempt));
            let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            tracing::warn!(
                delivery = row.id,
                to = row.target,
                attempt,
                error,
                "notification not delivered; trying again later"
            );
            store::tried(db, row.id, "pending", next, Some(&error)).await?;
        }
    }
    Ok(())
}

/// The wait after failed try number `attempt` (1, 2, …): `first`, doubled
/// each time, at most [`MAX_WAIT`].
fn backoff(first: Duration, attempt: i64) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    first.saturating_mul(1 << doublings).min(MAX_WAIT)
}

/// POSTs the row in the receiver's format; why not, if not a 2xx.
async fn send(
    config: &Config,
    client: &reqwest::Client,
    target: &Notify,
    row: &Delivery,
) -> Result<(), String> {
    let body = body(config, target.format, row);
    let mut request = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Opsdeck-Event", &row.event)
        .header("X-Opsdeck-Delivery", row.id.to_string());
    // Read at each send: a replaced key needs no restart.
    if let Some(key) = target.signing_key().map_err(|e| e.to_string())? {
        request = request.header("X-Opsdeck-Signature", signature(&key, &body));
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", target.url))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {status}", target.url))
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `key`.
fn signature(key: &str, body: &str) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the receiver is sent: the same bytes at every try of a row.
fn body(config: &Config, format: NotifyFormat, row: &Delivery) -> String {
    let link = match row.job_id {
        Some(job) => format!("{}/jobs/{job}", config.server.public_url),
        None => format!("{}/apps/{}", config.server.public_url, row.app),
    };
    let text = format!("{} — {link}", row.text);
    let value = match format {
        NotifyFormat::Json => serde_json::json!({
            "id": row.id,
            "event": row.event,
            "app": row.app,
            "job": row.job_id,
            "text": row.text,
            "link": link,
            "at": row.created_at,
            "detail": serde_json::from_str::<serde_json::Value>(&row.detail).unwrap_or_default(),
        }),
        NotifyFormat::Slack => serde_json::json!({ "text": text }),
        NotifyFormat::Matrix => serde_json::json!({ "msgtype": "m.text", "body": text }),
    };
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let first = Duration::from_secs(10);
        assert_eq!(backoff(first, 1), Duration::from_secs(10));
        assert_eq!(backoff(first, 3), Duration::from_secs(40));
        assert_eq!(backoff(first, 40), MAX_WAIT);
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
