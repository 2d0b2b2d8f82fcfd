//! `secret.overdue`: every few minutes (and at start) each secret with a
//! `max_age` is looked at; one past it is notified once per overdue
//! stretch (`notify_overdue` remembers which), across restarts too.

use std::time::Duration;

use super::secret_age::{self, Since};
use crate::{Context, Result, notify};

/// How often ages are looked at: a secret is overdue for days, not seconds.
const EVERY: Duration = Duration::from_secs(10 * 60);

/// Watches for as long as opsdeck runs, if any receiver wants the event.
pub fn start(ctx: &Context) {
    let wanted = ctx
        .config
        .notify
        .iter()
        .any(|n| n.events.iter().any(|e| e == "secret.overdue"));
    if !wanted {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = look(&ctx).await {
                tracing::error!(error = %e, "cannot look for overdue secrets");
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}

async fn look(ctx: &Context) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    for app in &ctx.config.apps {
        for secret in app.secrets.iter().filter(|s| s.max_age.is_some()) {
            let rotated = secret_age::last_rotation(ctx, &app.name, &secret.name).await?;
            let age = secret_age::age(ctx, app, secret, rotated.map(|(_, at)| at), now).await;
            let Some((age, (since, how))) = age.and_then(|a| a.since.map(|s| (a, s))) else {
                continue;
            };
            if !age.due.overdue() {
                continue;
            }
            let first = sqlx::query(
                "INSERT OR IGNORE INTO notify_overdue (app, secret, since, at) VALUES (?, ?, ?, ?)",
            )
            .bind(&app.name)
            .bind(&secret.name)
            .bind(since)
            .bind(now)
            .execute(&ctx.db)
            .await?
            .rows_affected()
                == 1;
            if !first {
                continue;
            }
            let how = match how {
                Since::Rotated => "its last rotation",
                Since::FileChanged => "its file last changed",
            };
            let event = notify::Event {
                kind: "secret.overdue",
                app: &app.name,
                job: None,
                text: format!(
                    "{}: secret {} is {} (max_age {}, counted from when {how})",
                    app.name,
                    secret.name,
                    age.due.words(),
                    secret_age::span(age.max_age_ms)
                ),
                detail: serde_json::json!({"secret": secret.name, "since": since, "max_age_ms": age.max_age_ms}),
            };
            notify::emit(&ctx.db, &ctx.config, event).await;
        }
    }
    Ok(())
}
