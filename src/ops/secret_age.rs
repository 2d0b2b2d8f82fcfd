//! How old a secret is and whether it is overdue (`max_age`): the runbooks
//! never say when a secret was last rotated. The age counts from the last
//! rotation opsdeck ran (its succeeded `rotate` job: a value made or
//! pasted) or, before any, from the last change of the file it lives in
//! (its env file, or its key file) on the app's host — the secret is at
//! least that old, so a file already past `max_age` is surely overdue.

use std::time::Duration;

use serde::Serialize;

use crate::config::{App, Secret};
use crate::host::{Host, file_time};
use crate::{Context, Result};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// "Due soon" starts a tenth of `max_age` before it ends, at most this early.
const SOON_AT_MOST: i64 = 14 * DAY;

/// How a secret stands against its `max_age`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Due {
    /// Due in `left_ms`.
    Fine { left_ms: i64 },
    /// Due in `left_ms`, which is less than a tenth of `max_age`.
    Soon { left_ms: i64 },
    /// Past `max_age` by `by_ms`.
    Overdue { by_ms: i64 },
    /// Its age cannot be told: why.
    Unknown { why: String },
}

/// Where a secret's age counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Since {
    /// The last rotation opsdeck ran.
    Rotated,
    /// Its file's last change: no rotation by opsdeck yet.
    FileChanged,
}

/// A secret's age, for secrets with a `max_age`.
#[derive(Debug, Clone, Serialize)]
pub struct Age {
    pub max_age_ms: i64,
    /// Since when (Unix ms), and how opsdeck knows; none when it cannot tell.
    pub since: Option<(i64, Since)>,
    pub due: Due,
}

impl Due {
    /// How `age_ms` stands against `max_age`.
    pub fn of(max_age: Duration, age_ms: i64) -> Due {
        let max = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let left = max.saturating_sub(age_ms);
        if left < 0 {
            Due::Overdue { by_ms: -left }
        } else if left < (max / 10).min(SOON_AT_MOST) {
            Due::Soon { left_ms: left }
        } else {
            Due::Fine { left_ms: left }
        }
    }

    /// What the pages say: "overdue by 12 days", "due in 5 days".
    pub fn words(&self) -> String {
        match self {
            Due::Fine { left_ms } | Due::Soon { left_ms } => format!("due in {}", span(*left_ms)),
            Due::Overdue { by_ms } => format!("overdue by {}", span(*by_ms)),
            Due::Unknown { why } => format!("age unknown: {why}"),
        }
    }

    /// Its CSS class: red when overdue, amber when soon or unknown.
    pub fn class(&self) -> &'static str {
        match self {
            Due::Fine { .. } => "due-fine",
            Due::Soon { .. } => "due-soon",
            Due::Overdue { .. } => "due-overdue",
            Due::Unknown { .. } => "due-unknown",
        }
    }

    /// Whether a card should show it: anything but fine.
    pub fn needs_attention(&self) -> bool {
        !matches!(self, Due::Fine { .. })
    }

    pub fn overdue(&self) -> bool {
        matches!(self, Due::Overdue { .. })
    }
}

/// A span of time in the largest whole unit: "12 days", "1 hour".
pub fn span(ms: i64) -> String {
    let (n, unit) = match ms.max(0) {
        m if m >= DAY => (m / DAY, "day"),
        m if m >= HOUR => (m / HOUR, "hour"),
        m => ((m / MINUTE).max(1), "minute"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The last successful rotation of `secret`: who, and when (Unix ms).
pub(super) async fn last_rotation(
    ctx: &Context,
    app: &str,
    secret: &str,
) -> Result<Option<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT actor, finished_at FROM jobs WHERE app = ? AND kind = 'rotate' AND target = ? \
         AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
    )
    .bind(app)
    .bind(secret)
    .fetch_optional(&ctx.db)
    .await?)
}

/// The age of `secret` at `now` (Unix ms), if it has a `max_age`.
/// `rotated` is its last rotation by opsdeck (Unix ms).
pub(super) async fn age(
    ctx: &Context,
    app: &App,
    secret: &Secret,
    rotated: Option<i64>,
    now: i64,
) -> Option<Age> {
    let max_age = secret.max_age?;
    let since = match (rotated, secret.place(app)) {
        (Some(at), _) => Ok((at, Since::Rotated)),
        (None, Some(place)) => match Host::of(&ctx.config, app) {
            Ok(host) => file_time::modified(&host, place.path())
                .await
                .map(|at| (at, Since::FileChanged))
                .map_err(|e| e.public_message()),
            Err(e) => Err(e.public_message()),
        },
        (None, None) => Err("opsdeck has not rotated it yet, and it is in no file".to_owned()),
    };
    let due = match &since {
        Ok((at, _)) => Due::of(max_age, now - at),
        Err(why) => Due::Unknown { why: why.clone() },
    };
    Some(Age {
        max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
        since: since.ok(),
        due,
    })
}

/// The secrets of `app` that are overdue, due soon or of unknown age, for
/// the dashboard's card: (name, how it stands).
pub async fn flagged(ctx: &Context, app: &App) -> Result<Vec<(String, Due)>> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    for secret in app.secrets.iter().filter(|s| s.max_age.is_some()) {
        let rotated = last_rotation(ctx, &app.name, &secret.name).await?;
        let age = age(ctx, app, secret, rotated.map(|(_, at)| at), now).await;
        if let Some(age) = age.filter(|a| a.due.needs_attention()) {
            out.push((secret.name.clone(), age.due));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_soon_is_the_last_tenth_and_overdue_says_by_how_much() {
        let ninety = Duration::from_secs(90 * 86400);
        assert_eq!(Due::of(ninety, 10 * DAY).words(), "due in 80 days");
        assert_eq!(Due::of(ninety, 10 * DAY).class(), "due-fine");
        let soon = Due::of(ninety, 85 * DAY);
        assert_eq!(
            (soon.words(), soon.class()),
            ("due in 5 days".to_owned(), "due-soon")
        );
        let late = Due::of(ninety, 102 * DAY + 3 * HOUR);
        assert_eq!(late.words(), "overdue by 12 days");
        assert!(late.overdue() && late.needs_attention());
        assert_eq!(
            Due::of(ninety, 90 * DAY + HOUR).words(),
            "overdue by 1 hour"
        );
        // A year: soon starts 14 days before, not 36.
        let year = Duration::from_secs(365 * 86400);
        assert_eq!(Due::of(year, 350 * DAY).class(), "due-fine");
        assert_eq!(Due::of(year, 352 * DAY).class(), "due-soon");
        assert_eq!(span(0), "1 minute");
        assert_eq!(span(DAY), "1 day");
    }
}
