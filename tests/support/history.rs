//! A history of jobs and releases written straight into the database a
//! real opsdeck serves from — what its insights are computed from — at
//! the times a test chooses: a job at a time (`job`, `deploy`,
//! `rollback`), or 100,000 at once for the benchmark (`bulk`).

use sqlx::SqlitePool;

pub const SECOND: i64 = 1000;
pub const MIN: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// Now, in Unix milliseconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `hour` o'clock UTC `days` days ago.
pub fn days_ago(days: i64, hour: i64) -> i64 {
    now().div_euclid(DAY) * DAY - days * DAY + hour * HOUR
}

/// A job of `app` requested at `at` that ended in `state`, having run
/// for `took` ms from the moment it was requested; None: it never
/// started (cancelled while queued). Its id.
pub async fn job(
    db: &SqlitePool,
    app: &str,
    kind: &str,
    state: &str,
    at: i64,
    took: Option<i64>,
) -> i64 {
    let job = begun(db, app, kind, at, took.is_some()).await;
    end(db, job, state, at + took.unwrap_or(0)).await;
    job
}

/// Written as the runner writes a job: requested (and started), then
/// ended — the database's per-day figures are kept as jobs end
/// (migration 0160).
pub async fn begun(db: &SqlitePool, app: &str, kind: &str, at: i64, started: bool) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO jobs (app, kind, target, actor, role, state, plan, created_at, started_at)
         VALUES (?, ?, '', 'ada', 'owner', 'running', '{}', ?, ?) RETURNING id",
    )
    .bind(app)
    .bind(kind)
    .bind(at)
    .bind(started.then_some(at))
    .fetch_one(db)
    .await
    .unwrap()
}

pub async fn end(db: &SqlitePool, job: i64, state: &str, at: i64) {
    sqlx::query("UPDATE jobs SET state = ?, finished_at = ? WHERE id = ?")
        .bind(state)
        .bind(at)
        .bind(job)
        .execute(db)
        .await
        .unwrap();
}

/// A deploy job and its release, of a commit made at `committed`:
/// `(job, release)`.
pub async fn deploy(
    db: &SqlitePool,
    app: &str,
    state: &str,
    at: i64,
    took: Option<i64>,
    committed: Option<i64>,
) -> (i64, i64) {
    let job = begun(db, app, "deploy", at, took.is_some()).await;
    let release = release(db, app, job, "deploy", at, committed, None).await;
    end(db, job, state, at + took.unwrap_or(0)).await;
    (job, release)
}

/// A rollback job moving away from release `replaces`: `(job, release)`.
pub async fn rollback(
    db: &SqlitePool,
    app: &str,
    replaces: i64,
    state: &str,
    at: i64,
    took: Option<i64>,
) -> (i64, i64) {
    let job = begun(db, app, "rollback", at, took.is_some()).await;
    let release = release(db, app, job, "rollback", at, None, Some(replaces)).await;
    end(db, job, state, at + took.unwrap_or(0)).await;
    (job, release)
}

/// The release of `job` (a deploy or a rollback moving away from
/// `replaces`), of a commit made at `committed`.
pub async fn release(
    db: &SqlitePool,
    app: &str,
    job: i64,
    kind: &str,
    at: i64,
    committed: Option<i64>,
    replaces: Option<i64>,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO releases (app, job_id, kind, ref, sha, actor, created_at, recovery_step, replaces, committed_at)
         VALUES (?, ?, ?, 'main', ?, 'ada', ?, 9, ?, ?) RETURNING id",
    )
    .bind(app)
    .bind(job)
    .bind(kind)
    .bind(format!("{job:040x}"))
    .bind(at)
    .bind(replaces)
    .bind(committed)
    .fetch_one(db)
    .await
    .unwrap()
}

/// `jobs` jobs of apps `app0`…`app{apps-1}`, evenly over the `days` days
/// before now, in one statement: 70 % sweeps, 15 % actions, 10 % deploys,
/// 2 % rollbacks (each of the app's deploy before it), 3 % rotations; 10 %
/// fail, time out, are interrupted or cancelled; durations up to 17 min;
/// deploys of commits made up to 8 hours before. Written as the runner
/// writes them: jobs running, their releases, then their ends.
pub async fn bulk(db: &SqlitePool, jobs: i64, apps: i64, days: i64) {
    let first = now() - days * DAY;
    let step = days * DAY / jobs;
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1),
         g AS (SELECT i, (i * 2654435761) % 1000 AS r, (i * 40503) % 997 AS s FROM n)
         INSERT INTO jobs (app, kind, target, actor, role, state, plan, created_at, started_at, summary)
         SELECT 'app' || (i % ?2),
                CASE WHEN r < 700 THEN 'sweep' WHEN r < 850 THEN 'action' WHEN r < 950 THEN 'deploy'
                     WHEN r < 970 THEN 'rollback' ELSE 'rotate' END,
                '', 'ada', 'owner',
                -- The state and duration it will end with, until it does.
                CASE WHEN s < 900 THEN 'succeeded' WHEN s < 960 THEN 'failed' WHEN s < 975 THEN 'timed_out'
                     WHEN s < 985 THEN 'interrupted' ELSE 'cancelled' END,
                '{}', ?3 + i * ?4, ?3 + i * ?4 + 100, s * 1000
         FROM g",
    )
    .bind(jobs)
    .bind(apps)
    .bind(first)
    .bind(step)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO releases (app, job_id, kind, ref, sha, actor, created_at, recovery_step, committed_at)
         SELECT app, id, kind, 'main', printf('%040x', id), 'ada', created_at, 9, created_at - (id % 48) * 600000
         FROM jobs WHERE kind IN ('deploy', 'rollback') ORDER BY id",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE releases SET replaces = (SELECT max(p.id) FROM releases p
             WHERE p.app = releases.app AND p.id < releases.id AND p.kind = 'deploy')
         WHERE kind = 'rollback'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE jobs SET finished_at = started_at + CAST(summary AS INTEGER), summary = NULL
         WHERE summary IS NOT NULL AND finished_at IS NULL",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
