//! The outbox table (`notify_outbox`): rows written by [`super::emit`],
//! moved by the deliverer, listed by `/notifications`.

use sqlx::SqlitePool;

use super::Event;
use crate::Result;

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub target: String,
    pub event: String,
    pub app: String,
    pub job_id: Option<i64>,
    pub text: String,
    pub detail: String,
    pub created_at: i64,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub done_at: Option<i64>,
}

/// How many rows are in each state.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

pub(super) async fn insert(db: &SqlitePool, target: &str, event: &Event<'_>) -> Result<()> {
    let at = now();
    sqlx::query(
        "INSERT INTO notify_outbox (target, event, app, job_id, text, detail, created_at, next_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(target)
    .bind(event.kind)
    .bind(event.app)
    .bind(event.job)
    .bind(&event.text)
    .bind(event.detail.to_string())
    .bind(at)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Pending rows whose time has come, oldest first.
pub(super) async fn due(db: &SqlitePool, limit: i64) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(
        "SELECT * FROM notify_outbox WHERE state = 'pending' AND next_at <= ? ORDER BY id LIMIT ?",
    )
    .bind(now())
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Records a try: `state` (`delivered`, `failed` or still `pending`), the
/// next try's time, the error if it failed.
pub(super) async fn tried(
    db: &SqlitePool,
    id: i64,
    state: &str,
    next_at: i64,
    error: Option<&str>,
) -> Result<()> {
    let done = (state != "pending").then(now);
    sqlx::query(
        "UPDATE notify_outbox SET state = ?, attempts = attempts + 1, next_at = ?,
         last_error = COALESCE(?, last_error), done_at = ? WHERE id = ?",
    )
    .bind(state)
    .bind(next_at)
    .bind(error)
    .bind(done)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// The newest rows, for `/notifications`.
pub async fn recent(db: &SqlitePool, limit: i64) -> Result<Vec<Delivery>> {
    Ok(
        sqlx::query_as("SELECT * FROM notify_outbox ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(db)
            .await?,
    )
}

pub async fn tally(db: &SqlitePool) -> Result<Tally> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM notify_outbox GROUP BY state")
            .fetch_all(db)
            .await?;
    let mut tally = Tally::default();
    for (state, n) in rows {
        match state.as_str() {
            "pending" => tally.pending = n,
            "delivered" => tally.delivered = n,
            _ => tally.failed += n,
        }
    }
    Ok(tally)
}
