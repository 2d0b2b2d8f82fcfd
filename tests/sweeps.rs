//! Sweeps against real things: a real SQLite database written to by another
//! process, real release directories with a process living in one, a Gitea
//! API stand-in following Gitea's paths and payloads, real commands; the
//! scheduler with its time injected.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, TimeZone, Utc};
use opsdeck::auth::Role;
use opsdeck::jobs::State;
use opsdeck::ops::schedule::{Clock, Scheduler};
use opsdeck::ops::sweeps;
use support::deck::{Deck, actor};
use support::gitea::{self, FakeGitea};

/// Runs sweep `name` of `app` as an operator; (output lines, final state).
async fn sweep(deck: &Deck, app: &str, name: &str, dry_run: bool) -> (Vec<String>, State) {
    let alice = actor("alice", Role::Operator);
    let job = sweeps::request(&deck.ctx, &alice, app, name, dry_run)
        .await
        .unwrap();
    deck.wait(job).await
}

/// What the job listed with "would …" (a dry run).
fn would(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("would "))
        .map(|l| l.split(" (").next().unwrap_or(l).to_string())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- sqlite-backup

const BACKUP: &str = r#"
[[app]]
name = "rfc-app"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "$DIR/app.db"
dir = "$DIR/backups"
keep = 2
"#;

/// Another process writing to `db` without pause: each transaction adds 50
/// rows and drops older ones, so a consistent copy holds a multiple of 50.
fn writer(db: &Path, stop: &Path) -> [std::process::Child; 2] {
    let script = r#"
printf '.timeout 30000\nPRAGMA journal_mode=WAL;\nCREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER, data BLOB);\n'
i=0
while [ ! -e "$1" ]; do
  i=$((i+1))
  printf 'BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<50) INSERT INTO t (n, data) SELECT %d, randomblob(4000) FROM c; DELETE FROM t WHERE n < %d - 40; COMMIT;\n' $i $i
done"#;
    let mut sqlite = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sqlite3 (Debian package sqlite3) is needed for this test");
    let feed = sqlite.stdin.take().unwrap();
    // The shell feeds SQL, sqlite3 applies it; both end once `stop` exists.
    let shell = Command::new("sh")
        .args(["-c", script, "writer"])
        .arg(stop)
        .stdout(feed)
        .spawn()
        .unwrap();
    [shell, sqlite]
}

/// How many transactions the writer committed to `db`.
async fn transactions(db: &Path) -> i64 {
    let pool = opsdeck::db::connect(db).await.unwrap();
    let n = sqlx::query_scalar("SELECT coalesce(max(n), 0) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    pool.close().await;
    n
}

#[tokio::test]
async fn sqlite_backup_of_a_database_being_written_passes_integrity_check_and_keeps_n() {
    let deck = Deck::start(BACKUP).await;
    let db = deck.path("app.db");
    let stop = deck.path("stop");
    let mut writing = writer(&db, &stop);
    while transactions(&db).await < 20 {
        tokio::task::yield_now().await;
    }
    std::fs::create_dir_all(deck.path("backups")).unwrap();
    std::fs::write(deck.path("backups/notes.txt"), "not a backup").unwrap();

    let before = transactions(&db).await;
    let (lines, state) = sweep(&deck, "rfc-app", "db-backup", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("integrity_check ok")),
        "{lines:#?}"
    );

    // The copy is a consistent instant: it opens, passes integrity_check
    // on its own, and holds whole transactions only.
    let copies: Vec<PathBuf> = names(&deck.path("backups"))
        .into_iter()
        .filter(|n| n.starts_with("app-"))
        .map(|n| deck.path("backups").join(n))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    // Read-only, as a restore would look first: nothing written beside it.
    let copy = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&copies[0])
            .read_only(true),
    )
    .await
    .unwrap();
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&copy)
        .await
        .unwrap();
    assert_eq!(check, ["ok"]);
    let (n, partial, snapshot): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) % 50, max(n) FROM t")
            .fetch_one(&copy)
            .await
            .unwrap();
    assert!(n >= 500 && partial == 0, "{n} rows in the copy");
    assert!(snapshot >= before, "the copy is not older than the backup");
    copy.close().await;
    // The writer is still at it after the copy's instant.
    while transactions(&db).await <= snapshot {
        tokio::task::yield_now().await;
    }
    std::fs::write(&stop, "").unwrap();
    for process in &mut writing {
        assert!(process.wait().unwrap().success());
    }

    // Retention: with keep = 2, a dry run lists exactly the oldest backup
    // beyond it, and the runs leave exactly 2 (other files untouched).
    sweep(&deck, "rfc-app", "db-backup", false).await;
    let before = names(&deck.path("backups"));
    let (lines, _) = sweep(&deck, "rfc-app", "db-backup", true).await;
    let oldest = deck.path("backups").join(&before[0]);
    assert_eq!(
        would(&lines),
        [
            format!(
                "create a backup of {} in {}",
                db.display(),
                deck.path("backups").display()
            ),
            format!("remove backup {}", oldest.display()),
        ]
    );
    assert_eq!(
        names(&deck.path("backups")),
        before,
        "a dry run changes nothing"
    );
    let (lines, state) = sweep(&deck, "rfc-app", "db-backup", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let after = names(&deck.path("backups"));
    assert_eq!(after.len(), 3, "two backups and notes.txt: {after:?}");
    assert_eq!(after[0], before[1], "the oldest went, the newer stayed");
    assert!(after.contains(&"notes.txt".to_string()));
}

// ---------------------------------------------------------------- releases

const RELEASES: &str = r#"
[[app]]
name = "wppackages"
strategy = "releases"
repo = "$DIR/repo"
path = "$DIR/srv"
keep = 5

[[app.sweep]]
name = "old-releases"
kind = "releases"
keep = 0
"#;

/// A release directory `<ts>-<sha7>` and its row in the release log.
async fn release(deck: &Deck, n: u8, state: &str) -> PathBuf {
    let sha = format!("{n}").repeat(40);
    let dir = deck.path(&format!("srv/releases/2026120{n}T000000Z-{}", &sha[..7]));
    std::fs::create_dir_all(&dir).unwrap();
    let job: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (app, kind, target, actor, role, state, plan, created_at)
         VALUES ('wppackages', 'deploy', 'main', 'ben', 'admin', ?, '{\"steps\":[]}', ?) RETURNING id",
    )
    .bind(state)
    .bind(i64::from(n))
    .fetch_one(&deck.ctx.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO releases (app, job_id, kind, ref, sha, actor, created_at, recovery_step)
         VALUES ('wppackages', ?, 'deploy', 'main', ?, 'ben', ?, 99)",
    )
    .bind(job)
    .bind(&sha)
    .bind(i64::from(n))
    .execute(&deck.ctx.db)
    .await
    .unwrap();
    dir
}

#[tokio::test]
async fn releases_keeps_current_rollback_target_and_in_use_even_with_keep_0() {
    let deck = Deck::start(RELEASES).await;
    let one = release(&deck, 1, "succeeded").await;
    let two = release(&deck, 2, "succeeded").await;
    let three = release(&deck, 3, "failed").await;
    let four = release(&deck, 4, "succeeded").await;
    let five = release(&deck, 5, "succeeded").await;
    let (lines, state) = sweep(&deck, "wppackages", "old-releases", true).await;
    assert_eq!(state, State::Failed);
    assert!(
        lines
            .last()
            .unwrap()
            .contains("current does not point to a directory"),
        "{lines:#?}"
    );
    std::os::unix::fs::symlink(&five, deck.path("srv/current")).unwrap();
    // An old worker still running from release 2.
    let mut worker = Command::new("sleep")
        .arg("60")
        .current_dir(&two)
        .spawn()
        .unwrap();

    let (lines, state) = sweep(&deck, "wppackages", "old-releases", true).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let listed = would(&lines);
    assert_eq!(
        listed,
        [
            format!("remove release {}", three.display()),
            format!("remove release {}", one.display()),
        ]
    );
    let said = lines.join("\n");
    assert!(said.contains("-5555555: current"), "{said}");
    assert!(said.contains("-4444444: the rollback target"), "{said}");
    assert!(
        said.contains(&format!("in use by process {}", worker.id())),
        "{said}"
    );

    let (lines, state) = sweep(&deck, "wppackages", "old-releases", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    assert!(!one.exists() && !three.exists());
    assert!(two.exists() && four.exists() && five.exists());
    worker.kill().unwrap();
    worker.wait().unwrap();
}

// ---------------------------------------------------------------- gitea-branches

fn days_ago(days: i64) -> String {
    (Utc::now() - chrono::TimeDelta::days(days)).to_rfc3339()
}

fn branch(name: &str, days: i64, protected: bool) -> gitea::Branch {
    gitea::Branch {
        name: name.into(),
        committed: days_ago(days),
        protected,
    }
}

async fn branches_deck(gitea: &FakeGitea) -> Deck {
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, value).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        file.display().to_string()
    };
    let token = secret("gitea-token", gitea::TOKEN);
    let client_secret = secret("client-secret", "not used here");
    let config = format!(
        r#"
[auth]
gitea_url = "{}"
client_id = "opsdeck"
client_secret_file = "{client_secret}"
gitea_token_file = "{token}"

[[app]]
name = "rfc-app"

[[app.sweep]]
name = "stale-branches"
kind = "gitea-branches"
repo = "wiggleverse/rfcs"
days = 90
pinned = ["rfc-pinned"]
"#,
        gitea.url,
    );
    Deck::start_in(dir, &config).await
}

#[tokio::test]
async fn gitea_branches_deletes_exactly_what_its_dry_run_listed_and_skips_protected() {
    let gitea = FakeGitea::start().await;
    gitea.with_repo("wiggleverse/rfcs", |repo| {
        repo.default_branch = "main".into();
        repo.branches = vec![
            branch("main", 400, false),
            branch("release/1.x", 300, true),
            branch("rfc-idle", 120, false),
            branch("rfc-merged", 130, false),
            branch("rfc-merged-lately", 100, false),
            branch("rfc-pinned", 200, false),
            branch("feature/old", 95, false),
        ];
        // More than one page of young branches.
        repo.branches
            .extend((0..55).map(|i| branch(&format!("young-{i}"), 3, false)));
        repo.pulls = vec![
            gitea::Pull {
                number: 7,
                head: "rfc-merged".into(),
                merged_at: Some(days_ago(95)),
            },
            gitea::Pull {
                number: 9,
                head: "rfc-merged-lately".into(),
                merged_at: Some(days_ago(10)),
            },
        ];
    });
    let deck = branches_deck(&gitea).await;

    let (lines, state) = sweep(&deck, "rfc-app", "stale-branches", true).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let listed = would(&lines);
    let of = |b: &str| format!("delete branch {b} of wiggleverse/rfcs");
    assert_eq!(
        listed,
        [of("rfc-idle"), of("rfc-merged"), of("feature/old")]
    );
    let said = lines.join("\n");
    assert!(
        said.contains("keep branch release/1.x: protected"),
        "{said}"
    );
    assert!(said.contains("keep branch rfc-pinned: pinned"), "{said}");
    assert!(said.contains("(merged 95 days ago)"), "{said}");
    assert!(gitea.with_repo("wiggleverse/rfcs", |r| r.deleted.is_empty()));

    let (lines, state) = sweep(&deck, "rfc-app", "stale-branches", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let deleted = gitea.with_repo("wiggleverse/rfcs", |r| r.deleted.clone());
    assert_eq!(deleted, ["rfc-idle", "rfc-merged", "feature/old"]);
    let last = sweeps::last_run(&deck.ctx, "rfc-app", "stale-branches")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last.items,
        deleted
            .iter()
            .map(|b| format!("deleted branch {b} of wiggleverse/rfcs"))
            .collect::<Vec<_>>()
    );
    assert_eq!(last.changed, None);

    // Things change between a dry run and the run: the run does only what
    // both lists have, and says what differs.
    gitea.with_repo("wiggleverse/rfcs", |repo| {
        repo.branches.push(branch("rfc-a", 100, false));
        repo.branches.push(branch("rfc-b", 100, false));
    });
    let (lines, _) = sweep(&deck, "rfc-app", "stale-branches", true).await;
    assert_eq!(would(&lines), [of("rfc-a"), of("rfc-b")]);
    gitea.with_repo("wiggleverse/rfcs", |repo| {
        repo.branches.retain(|b| b.name != "rfc-a");
        repo.branches.push(branch("rfc-c", 100, false));
    });
    let (lines, state) = sweep(&deck, "rfc-app", "stale-branches", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let deleted = gitea.with_repo("wiggleverse/rfcs", |r| r.deleted.clone());
    assert_eq!(
        deleted[3..],
        ["rfc-b"],
        "only what the dry run listed and is still due"
    );
    let said = lines.join("\n");
    assert!(
        said.contains("things changed since the dry run")
            && said.contains("no longer due, so not done: delete branch rfc-a")
            && said.contains("left for the next run: delete branch rfc-c"),
        "{said}"
    );
}

// ---------------------------------------------------------------- job-output, command

const CHORES: &str = r#"
[[app]]
name = "shop"

[[app.action]]
name = "talk"
run = ["sh", "-c", "echo one; echo two"]

[[app.sweep]]
name = "old-output"
kind = "job-output"
days = 1

[[app.sweep]]
name = "cleanup-sessions"
kind = "command"
run = ["sh", "-c", "echo cleaning sessions; echo database is locked >&2; exit 4"]
"#;

#[tokio::test]
async fn job_output_prunes_old_output_but_never_audit_rows() {
    let deck = Deck::start(CHORES).await;
    let old = deck.run("shop", "talk").await.unwrap();
    deck.wait(old).await;
    let recent = deck.run("shop", "talk").await.unwrap();
    deck.wait(recent).await;
    let two_days_ago = Utc::now().timestamp_millis() - 2 * 86_400_000;
    sqlx::query("UPDATE jobs SET finished_at = ? WHERE id = ?")
        .bind(two_days_ago)
        .bind(old)
        .execute(&deck.ctx.db)
        .await
        .unwrap();
    let audit_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_events WHERE job_id = ?")
            .bind(old)
            .fetch_one(&deck.ctx.db)
            .await
            .unwrap()
    };
    let audited = audit_rows().await;

    let (lines, _) = sweep(&deck, "shop", "old-output", true).await;
    assert_eq!(would(&lines), [format!("delete the output of job {old}")]);
    let (lines, state) = sweep(&deck, "shop", "old-output", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let (old_lines, _) = deck.wait(old).await;
    let (recent_lines, _) = deck.wait(recent).await;
    assert!(old_lines.is_empty(), "{old_lines:?}");
    assert!(recent_lines.contains(&"two".to_string()));
    assert_eq!(audit_rows().await, audited, "audit rows are never pruned");
    assert_eq!(
        deck.ctx.jobs.job(old).await.unwrap().state,
        State::Succeeded
    );
}

#[tokio::test]
async fn a_failing_command_sweep_reports_its_exit_code_and_output() {
    let deck = Deck::start(CHORES).await;
    let (lines, state) = sweep(&deck, "shop", "cleanup-sessions", true).await;
    assert_eq!(state, State::Succeeded);
    assert!(
        lines.iter().any(|l| l.starts_with("would run sh -c ")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l == "cleaning sessions"),
        "a dry run runs nothing"
    );

    let (lines, state) = sweep(&deck, "shop", "cleanup-sessions", false).await;
    assert_eq!(state, State::Failed);
    assert!(
        lines.contains(&"cleaning sessions".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"database is locked".to_string()),
        "{lines:#?}"
    );
    let last = sweeps::last_run(&deck.ctx, "shop", "cleanup-sessions")
        .await
        .unwrap()
        .unwrap();
    let summary = last.job.summary.unwrap();
    assert!(summary.contains("exit code 4"), "{summary}");
}

// ---------------------------------------------------------------- schedule

const SCHEDULED: &str = r#"
[[app]]
name = "shop"

[[app.action]]
name = "hold"
run = ["sh", "-c", "while [ ! -e $DIR/gate ]; do sleep 0.02; done"]

[[app.sweep]]
name = "nightly"
kind = "command"
run = ["true"]
schedule = "0 3 * * *"
timezone = "Europe/Berlin"

[[app.sweep]]
name = "no-catch-up"
kind = "command"
run = ["true"]
schedule = "0 3 * * *"
timezone = "Europe/Berlin"
catch_up = false
"#;

/// Berlin's 03:00 on 2026-12-<day> (CET, UTC+1).
fn three_am(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, 2, 0, 0).unwrap()
}

/// A clock the test moves: each sleep jumps to its end, a little late, and
/// the `sleeps_left`-th sleep never ends (the test is done by then).
struct TestClock {
    now: std::sync::Mutex<DateTime<Utc>>,
    slept: std::sync::Mutex<Vec<DateTime<Utc>>>,
    sleeps_left: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    fn sleep_until(
        &self,
        at: DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.slept.lock().unwrap().push(at);
        if self
            .sleeps_left
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.done.notify_one();
            return Box::pin(std::future::pending());
        }
        *self.now.lock().unwrap() = at + chrono::TimeDelta::milliseconds(300);
        Box::pin(std::future::ready(()))
    }
}

/// Scheduled jobs: (sweep, scheduled minute, actor).
async fn scheduled(deck: &Deck) -> Vec<(String, DateTime<Utc>, String)> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT r.sweep, r.scheduled_for, j.actor FROM sweep_runs r JOIN jobs j ON j.id = r.job_id
         WHERE r.scheduled_for IS NOT NULL ORDER BY r.job_id",
    )
    .fetch_all(&deck.ctx.db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(s, at, a)| (s, DateTime::from_timestamp_millis(at).unwrap(), a))
        .collect()
}

#[tokio::test]
async fn a_schedule_fires_at_its_minute_once() {
    let deck = Deck::start(SCHEDULED).await;
    let clock = std::sync::Arc::new(TestClock {
        now: std::sync::Mutex::new(three_am(3) - chrono::TimeDelta::seconds(30)),
        slept: Default::default(),
        sleeps_left: 2.into(),
        done: Default::default(),
    });
    let scheduler = Scheduler::new(deck.ctx.clone());
    let looping = clock.clone();
    let task = tokio::spawn(async move { scheduler.run(looping.as_ref()).await });
    clock.done.notified().await;
    // It slept until exactly the minute, woke (300 ms late) and started
    // each sweep once, as the scheduler.
    let slept = clock.slept.lock().unwrap().clone();
    assert_eq!(slept, [three_am(3), three_am(4)]);
    let runs = scheduled(&deck).await;
    assert_eq!(
        runs,
        ["nightly", "no-catch-up"].map(|s| (
            s.to_string(),
            three_am(3),
            "system:scheduler".to_string()
        ))
    );
    task.abort();

    // Ticking again within the minute (or a second scheduler) starts nothing.
    let again = Scheduler::new(deck.ctx.clone());
    let fired = again
        .tick(three_am(3) + chrono::TimeDelta::seconds(40))
        .await
        .unwrap();
    assert!(fired.is_empty(), "{fired:?}");
    assert_eq!(scheduled(&deck).await.len(), 2);
}

#[tokio::test]
async fn a_run_missed_while_down_runs_once_at_start_and_never_two_at_once() {
    let deck = Deck::start(SCHEDULED).await;
    Scheduler::new(deck.ctx.clone())
        .tick(three_am(3) - chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    let Deck { ctx, dir } = deck;
    drop(ctx);
    // Back two days and some hours later: 03:00 came twice meanwhile.
    let deck = Deck::start_in(dir, SCHEDULED).await;
    let scheduler = Scheduler::new(deck.ctx.clone());
    let at = three_am(5) + chrono::TimeDelta::hours(5);
    let fired = scheduler.tick(at).await.unwrap();
    assert_eq!(fired.len(), 2);
    assert!(fired[0].job.is_ok(), "{fired:?}");
    assert_eq!(
        fired[1].job,
        Err("missed while opsdeck was down; catch_up is off".into())
    );
    assert_eq!(
        scheduled(&deck).await,
        [(
            "nightly".to_string(),
            three_am(5),
            "system:scheduler".to_string()
        )]
    );
    assert!(
        scheduler
            .tick(at + chrono::TimeDelta::minutes(1))
            .await
            .unwrap()
            .is_empty()
    );
    let first = deck.ctx.jobs.recent(Some("shop"), 1).await.unwrap()[0].id;
    deck.wait(first).await;

    // The next night the app is busy: the run waits in the queue, and the
    // night after that is not started a second time beside it.
    let hold = deck.run("shop", "hold").await.unwrap();
    let fired = scheduler.tick(three_am(6)).await.unwrap();
    assert!(fired[0].job.is_ok(), "{fired:?}");
    let fired = scheduler.tick(three_am(7)).await.unwrap();
    assert_eq!(
        fired[0].job,
        Err("its previous run is still queued or running".into())
    );
    let skipped: Vec<String> = sqlx::query_scalar(
        "SELECT json_extract(detail, '$.sweep') FROM audit_events
         WHERE action = 'sweep.skip' AND actor = 'system:scheduler' ORDER BY id",
    )
    .fetch_all(&deck.ctx.db)
    .await
    .unwrap();
    assert_eq!(skipped, ["no-catch-up", "nightly", "no-catch-up"]);
    std::fs::write(deck.path("gate"), "").unwrap();
    deck.wait(hold).await;
    let runs: Vec<(String, DateTime<Utc>)> = scheduled(&deck)
        .await
        .into_iter()
        .map(|(s, at, _)| (s, at))
        .collect();
    assert_eq!(
        runs,
        [
            ("nightly".to_string(), three_am(5)),
            ("nightly".to_string(), three_am(6)),
            ("no-catch-up".to_string(), three_am(6)),
        ]
    );
}

// ---------------------------------------------------------------- config

#[test]
fn bad_schedules_unknown_kinds_and_keep_0_backups_are_config_errors_at_their_line() {
    let toml = r#"[[app]]
name = "shop"

[[app.sweep]]
name = "a"
kind = "vacuum"

[[app.sweep]]
name = "b"
kind = "command"
run = ["true"]
schedule = "0 3 * * * *"

[[app.sweep]]
name = "c"
kind = "sqlite-backup"
database = "/srv/shop/db.sqlite"
dir = "/srv/shop/backups"
keep = 0
"#;
    let errors = opsdeck::config::Config::parse(toml, Path::new("opsdeck.toml"))
        .unwrap_err()
        .errors;
    let found: Vec<(usize, String)> = errors.iter().map(|e| (e.line, e.key.clone())).collect();
    assert_eq!(
        found,
        [
            (6, "app \"shop\" → sweep \"a\" → kind".to_string()),
            (12, "app \"shop\" → sweep \"b\" → schedule".to_string()),
            (19, "app \"shop\" → sweep \"c\" → keep".to_string()),
        ],
        "{errors:#?}"
    );
}

// ---------------------------------------------------------------- page and API

const ON_THE_PAGE: &str = r#"
[[app]]
name = "shop"
environment = "production"

[[app.sweep]]
name = "tidy"
kind = "command"
run = ["echo", "tidied"]
schedule = "30 4 * * *"
timezone = "UTC"

[[app.sweep]]
name = "vacuum"
kind = "command"
run = ["true"]
role = "admin"
"#;

#[tokio::test]
async fn the_page_shows_each_sweep_and_the_api_runs_it_as_designed() {
    use reqwest::StatusCode;
    use support::server::{client, json};

    let s = support::server::start(ON_THE_PAGE).await;
    let operator = s.token("ci", Role::Operator).await;
    let viewer = s.token("watcher", Role::Viewer).await;
    let run = |sweep: &str, token: &str, body: serde_json::Value| {
        client()
            .post(s.at(&format!("/api/apps/shop/sweeps/{sweep}/run")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let res = run("tidy", &operator, serde_json::json!({"dry_run": true}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = json(res).await["job"].as_i64().unwrap();
    assert_eq!(s.finished(job).await, State::Succeeded);

    for (sweep, token, body, status, says) in [
        (
            "tidy",
            &operator,
            serde_json::json!({}),
            StatusCode::BAD_REQUEST,
            "dry_run",
        ),
        (
            "tidy",
            &viewer,
            serde_json::json!({"dry_run": true}),
            StatusCode::FORBIDDEN,
            "needs the operator role",
        ),
        (
            "vacuum",
            &operator,
            serde_json::json!({"dry_run": false}),
            StatusCode::FORBIDDEN,
            "needs the admin role",
        ),
        (
            "nope",
            &operator,
            serde_json::json!({"dry_run": true}),
            StatusCode::NOT_FOUND,
            "no sweep named \"nope\"",
        ),
    ] {
        let res = run(sweep, token, body).await.unwrap();
        assert_eq!(res.status(), status, "{sweep}");
        let error = json(res).await["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{error}");
    }

    // The page: last run with what it listed, next run, the buttons (the
    // admin-only sweep's disabled for an operator).
    let (cookie, csrf) = s.session("alice", Role::Operator).await;
    let page = s.browse("/apps/shop", &cookie).await.text().await.unwrap();
    assert!(page.contains("<h2>Sweeps</h2>"), "{page}");
    assert!(page.contains(&format!("#{job}</a> (dry run)")), "{page}");
    assert!(page.contains("would run echo tidied"), "{page}");
    let next =
        opsdeck::ops::schedule::next_run(&s.ctx.config.apps[0].sweeps[0], Utc::now()).unwrap();
    assert!(
        page.contains(&next.format("%Y-%m-%d 04:30:00 UTC").to_string()),
        "{page}"
    );
    assert!(page.contains("not scheduled"), "{page}");
    assert!(
        page.contains(r#"disabled title="needs the admin role">Run now"#),
        "{page}"
    );

    let res = client()
        .post(s.at("/apps/shop/sweeps/tidy/run"))
        .header(reqwest::header::COOKIE, &cookie)
        .header(reqwest::header::ORIGIN, &s.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()[reqwest::header::LOCATION].to_str().unwrap();
    let job: i64 = to.strip_prefix("/jobs/").unwrap().parse().unwrap();
    assert_eq!(s.finished(job).await, State::Succeeded);
    let listed = json(s.get_as("/api/apps/shop/sweeps", &operator).await).await;
    assert_eq!(listed[0]["last_run"]["job"]["id"], job);
    assert_eq!(listed[0]["last_run"]["job"]["actor"], "alice");
    assert_eq!(listed[0]["next_run"], next.timestamp_millis());
}

// ---------------------------------------------------------------- command sweeps: parameters, cwd, timeout, env file

/// A command sweep with parameters (the rfc-app runbook's "pin a branch"),
/// one that says where it runs, one that outlives its timeout, one with
/// the app's env file, and a scheduled one whose parameter has a default.
fn command_sweeps(dir: &Path) -> String {
    let (recorder, _) = support::argv_recorder(dir);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    std::fs::write(dir.join("app.env"), "GITEA_TOKEN=gt-0123456789abcdef\n").unwrap();
    format!(
        r#"
[[app]]
name = "shop"
environment = "staging"
env_file = "{dir}/app.env"

[[app.sweep]]
name = "pin"
kind = "command"
run = ["python3", "{recorder}", "--branch", "{{branch}}", "{{note}}"]

[[app.sweep.param]]
name = "branch"
kind = "choice"
choices = ["main", "staging"]
required = true

[[app.sweep.param]]
name = "note"
pattern = "[a-z ]+"
default = "kept by opsdeck"

[[app.sweep]]
name = "where"
kind = "command"
run = ["pwd"]
cwd = "{dir}/work"

[[app.sweep]]
name = "slow"
kind = "command"
run = ["sleep", "30"]
timeout = "300ms"

[[app.sweep]]
name = "with-env"
kind = "command"
run = ["sh", "-c", "echo token $GITEA_TOKEN"]
env_file = true

[[app.sweep]]
name = "nightly"
kind = "command"
run = ["python3", "{recorder}", "nightly", "{{note}}"]
schedule = "0 3 * * *"

[[app.sweep.param]]
name = "note"
required = true
default = "as scheduled"
"#,
        dir = dir.display(),
        recorder = recorder.display()
    )
}

#[tokio::test]
async fn a_command_sweeps_parameters_reach_it_as_one_word_and_refusals_are_denied() {
    use reqwest::StatusCode;
    use support::server::{assert_refused, job_of, json};

    let dir = tempfile::tempdir().unwrap();
    let s = support::server::start(&command_sweeps(dir.path())).await;
    let argv = dir.path().join("argv.jsonl");
    let token = s.token("ci", Role::Operator).await;
    let api = "/api/apps/shop/sweeps/pin/run";
    let body = |branch: &str, note: &str| serde_json::json!({"dry_run": false, "params": {"branch": branch, "note": note}});
    let res = s
        .post_json(api, &token, &body("staging", "two words here"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = json(res).await["job"].as_i64().unwrap();
    let (state, output) = s.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert_eq!(
        support::recorded_argvs(&argv),
        [["--branch", "staging", "two words here"]]
    );
    let shown = s.ctx.jobs.job(job).await.unwrap();
    assert_eq!(
        shown.what(),
        "sweep pin (branch=staging note='two words here')"
    );
    let titles: Vec<&str> = shown.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles[0], "Check the parameters");
    assert!(
        titles[1].ends_with("--branch staging 'two words here'"),
        "{titles:?}"
    );
    let detail = s.request_detail(job).await;
    assert!(detail.contains("branch=staging"), "{detail}");

    // A dry run lists the command as written; it takes no values.
    let dry = serde_json::json!({"dry_run": true});
    let job = json(s.post_json(api, &token, &dry).await).await["job"]
        .as_i64()
        .unwrap();
    let (state, output) = s.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert!(output.contains("--branch '{branch}' '{note}'"), "{output}");
    let dry = serde_json::json!({"dry_run": true, "params": {"branch": "main"}});
    let res = s.post_json(api, &token, &dry).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The page's Run now form asks for them, and runs without JavaScript.
    let (cookie, csrf) = s.session("alice", Role::Operator).await;
    let session = (cookie.as_str(), csrf.as_str());
    let page = s.page("/apps/shop", &cookie).await;
    assert!(
        page.contains(r#"<select id="sweep-pin-param-branch" name="param.branch" required>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"name="param.note" value="kept by opsdeck""#),
        "{page}"
    );
    let form = "/apps/shop/sweeps/pin/run";
    let res = s
        .post_form(form, session, &[("param.branch", "main")])
        .await;
    assert_eq!(s.finished(job_of(&res)).await, State::Succeeded);
    assert_eq!(
        support::recorded_argvs(&argv)[1],
        ["--branch", "main", "kept by opsdeck"]
    );

    // Hostile values through the API and the form: 400, denied, nothing queued.
    let before = s.job_count().await;
    for (branch, note, says) in [
        ("main", "x; rm -rf /", "does not match"),
        ("--help", "fine", "which a program would read as an option"),
        ("main", "a\nb", "line break"),
        ("mars", "fine", "not one of the choices"),
    ] {
        assert_refused(s.post_json(api, &token, &body(branch, note)).await, says).await;
        let fields = [("param.branch", branch), ("param.note", note)];
        assert_refused(s.post_form(form, session, &fields).await, says).await;
    }
    assert_eq!(s.job_count().await, before);
    s.assert_denied("sweep.params", 8, r#""sweep":"pin""#).await;
    assert_eq!(support::recorded_argvs(&argv).len(), 2);
}

#[tokio::test]
async fn a_command_sweep_runs_in_its_cwd_within_its_timeout_with_the_env_file() {
    let files = tempfile::tempdir().unwrap();
    let deck = Deck::start(&command_sweeps(files.path())).await;
    let (lines, state) = sweep(&deck, "shop", "where", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    let work = files.path().join("work").display().to_string();
    assert_eq!(lines.last(), Some(&work), "{lines:#?}");

    let (lines, state) = sweep(&deck, "shop", "slow", false).await;
    assert_eq!(state, State::TimedOut, "{lines:#?}");
    let last = sweeps::last_run(&deck.ctx, "shop", "slow")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last.job.summary.as_deref(),
        Some("step \"Run sleep 30\" did not finish within 300ms and was stopped")
    );

    let (lines, state) = sweep(&deck, "shop", "with-env", false).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    assert_eq!(lines.last().unwrap(), "token [redacted]");
}

#[tokio::test]
async fn a_scheduled_sweep_runs_with_its_parameters_defaults() {
    let files = tempfile::tempdir().unwrap();
    let deck = Deck::start(&command_sweeps(files.path())).await;
    let scheduler = Scheduler::new(deck.ctx.clone());
    let at = Utc.with_ymd_and_hms(2026, 12, 3, 3, 0, 0).unwrap();
    let first = scheduler
        .tick(at - chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    assert!(first.is_empty(), "{first:?}");
    let fired = scheduler.tick(at).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let job = fired[0].job.clone().unwrap();
    let (lines, state) = deck.wait(job).await;
    assert_eq!(state, State::Succeeded, "{lines:#?}");
    assert_eq!(
        support::recorded_argvs(&files.path().join("argv.jsonl")),
        [["nightly", "as scheduled"]]
    );
}
