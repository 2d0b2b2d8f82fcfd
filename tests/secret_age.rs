//! When a secret is due (issue 23): `max_age` against the last rotation
//! opsdeck ran or, before any, the last change of the file it lives in (an
//! env file's or a key file's real modification time), shown on the app
//! page, the dashboard and the API;
//! and `schedule`, which rotates a secret as `system:scheduler` once per
//! scheduled minute, across restarts too.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use opsdeck::auth::Role;
use opsdeck::host::envfile;
use opsdeck::jobs::State;
use opsdeck::ops::schedule::Scheduler;
use support::browser::Browser;
use support::deck::Deck;
use support::server;

const DAY: u64 = 86400;

/// Sets `path`'s modification time to `days` days (and an hour) ago.
fn age_file(path: &Path, days: u64) {
    let at = SystemTime::now() - Duration::from_secs(days * DAY + 3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

fn value(env: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(env).unwrap();
    envfile::get(env, &text, key).unwrap().unwrap()
}

#[tokio::test]
async fn overdue_secrets_are_flagged_on_the_app_page_the_dashboard_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "SESSION_KEY=old-session-key-1234\nAPI_KEY=old-api-key-5678\nSALT=old-salt-9012\n",
    )
    .unwrap();
    let key = dir.path().join("signing.pem");
    std::fs::write(&key, "a signing key\n").unwrap();
    let server = server::start(&format!(
        r#"[[app]]
name = "web"
env_file = "{env}"

[[app.secret]]
name = "SESSION_KEY"
generate = "hex:32"
max_age = "90d"

[[app.secret]]
name = "API_KEY"
generate = "hex:32"
max_age = "110d"

[[app.secret]]
name = "SALT"
generate = "hex:16"

[[app.secret]]
name = "SIGNING_KEY"
file = "{key}"
generate = "ed25519"
max_age = "30d"
"#,
        env = env.display(),
        key = key.display()
    ))
    .await;
    let viewer = server.token("viewer", Role::Viewer).await;
    // Nobody rotated them with opsdeck; the env file last changed 102 days ago.
    age_file(&env, 102);
    // The key file, 40 days ago.
    age_file(&key, 40);
    let page = |path: &'static str| {
        let (server, viewer) = (&server, &viewer);
        async move { server.get_as(path, viewer).await.text().await.unwrap() }
    };

    let app = page("/apps/web").await;
    assert!(
        app.contains(r#"<span class="badge due-overdue">overdue by 12 days</span> <span class="muted">max age 90 days, counted from the file's last change</span>"#),
        "{app}"
    );
    assert!(
        app.contains(r#"<span class="badge due-soon">due in 7 days</span> <span class="muted">max age 110 days"#),
        "{app}"
    );
    assert!(app.contains("no max_age"), "{app}");
    let dashboard = page("/").await;
    assert!(
        dashboard.contains(r#"<a href="/apps/web#secrets"><code>SESSION_KEY</code></a> <span class="badge due-overdue">overdue by 12 days</span>"#),
        "{dashboard}"
    );
    assert!(
        dashboard.contains(
            r#"<code>API_KEY</code></a> <span class="badge due-soon">due in 7 days</span>"#
        ),
        "{dashboard}"
    );
    assert!(!dashboard.contains("<code>SALT</code>"), "{dashboard}");

    let api = server::json(server.get_as("/api/apps/web/secrets", &viewer).await).await;
    assert_eq!(api[0]["name"], "SESSION_KEY");
    assert_eq!(api[0]["overdue"], true);
    assert_eq!(api[0]["due"]["state"], "overdue");
    assert_eq!(api[0]["age_from"], "file_changed");
    assert_eq!(api[0]["max_age_ms"], 90 * DAY * 1000);
    assert_eq!(api[1]["overdue"], false);
    assert_eq!(api[1]["due"]["state"], "soon");
    assert_eq!(api[2]["overdue"], false);
    assert_eq!(api[2]["due"], serde_json::Value::Null);
    assert_eq!(api[3]["due"]["state"], "overdue");

    // Rotated: the age counts from the rotation, and the card is quiet
    // about it. (The env file changed too, so API_KEY is young again.)
    let owner = server.token("ops", Role::Owner).await;
    let job = opsdeck::ops::secrets::rotate(
        &server.ctx,
        &support::deck::actor("ops", Role::Owner),
        "web",
        "SESSION_KEY",
    )
    .await
    .unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    let app = server
        .get_as("/apps/web", &owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        app.contains(r#"<span class="badge due-fine">due in 89 days</span> <span class="muted">max age 90 days</span>"#),
        "{app}"
    );
    let dashboard = page("/").await;
    assert!(
        !dashboard.contains("<code>SESSION_KEY</code>"),
        "{dashboard}"
    );
    assert!(!dashboard.contains("<code>API_KEY</code>"), "{dashboard}");
    assert!(
        dashboard.contains(r#"<code>SIGNING_KEY</code></a> <span class="badge due-overdue">overdue by 10 days</span>"#),
        "its key file's age counts: {dashboard}"
    );
    let api = server::json(server.get_as("/api/apps/web/secrets", &viewer).await).await;
    assert_eq!(api[0]["age_from"], "rotated");
    assert_eq!(api[0]["last_rotated_by"], "ops");
}

const SCHEDULED: &str = r#"
[[app]]
name = "web"
env_file = "$DIR/.env"

[[app.secret]]
name = "SESSION_KEY"
generate = "hex:32"
schedule = "* * * * *"

[[app.secret]]
name = "MONTHLY_KEY"
generate = "hex:32"
schedule = "0 3 1 * *"
timezone = "Europe/Berlin"
catch_up = false
"#;

/// 10:mm:ss UTC on 2026-12-06.
fn at(minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 10, minute, second)
        .unwrap()
}

/// The scheduler's rotations: (secret, actor), in order.
async fn rotations(deck: &Deck) -> Vec<(String, String)> {
    sqlx::query_as("SELECT target, actor FROM jobs WHERE kind = 'rotate' ORDER BY id")
        .fetch_all(&deck.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_scheduled_rotation_runs_once_per_minute_of_its_schedule_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, "SESSION_KEY=first\nMONTHLY_KEY=first\n").unwrap();
    let deck = Deck::start_in(dir, SCHEDULED).await;
    let scheduler = Scheduler::new(deck.ctx.clone());
    // First sight: nothing was missed before the schedule existed.
    assert!(scheduler.tick(at(0, 30)).await.unwrap().is_empty());

    let mut values = vec!["first".to_string()];
    for minute in 1..=3 {
        // Ticks within one minute: the first after its boundary rotates,
        // the others find the minute handled.
        let mut fired = Vec::new();
        for second in [0, 1, 20, 59] {
            fired.extend(scheduler.tick(at(minute, second)).await.unwrap());
        }
        assert_eq!(fired.len(), 1, "minute {minute}: {fired:?}");
        assert_eq!(fired[0].what, "rotation of SESSION_KEY");
        assert_eq!(fired[0].minute, at(minute, 0));
        let job = fired[0].job.clone().unwrap();
        let (lines, state) = deck.wait(job).await;
        assert_eq!(state, State::Succeeded, "{lines:?}");
        let now = value(&env, "SESSION_KEY");
        assert!(!values.contains(&now));
        values.push(now);
    }
    assert_eq!(
        rotations(&deck).await,
        vec![("SESSION_KEY".to_string(), "system:scheduler".to_string()); 3]
    );

    // A restart within minute 3 does not rotate it again; minute 4 does.
    let Deck { ctx, dir } = deck;
    drop((scheduler, ctx));
    let deck = Deck::start_in(dir, SCHEDULED).await;
    let scheduler = Scheduler::new(deck.ctx.clone());
    assert!(scheduler.tick(at(3, 40)).await.unwrap().is_empty());
    let fired = scheduler.tick(at(4, 0)).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let (_, state) = deck.wait(fired[0].job.clone().unwrap()).await;
    assert_eq!(state, State::Succeeded);
    assert_eq!(rotations(&deck).await.len(), 4);

    // The monthly rotation came while opsdeck was down, without catch_up:
    // skipped, and the audit log says so. Its next date is on the app page.
    let january = Utc.with_ymd_and_hms(2027, 1, 1, 5, 0, 30).unwrap();
    let fired = scheduler.tick(january).await.unwrap();
    let monthly = fired
        .iter()
        .find(|f| f.what == "rotation of MONTHLY_KEY")
        .unwrap();
    assert_eq!(
        monthly.job,
        Err("missed while opsdeck was down; catch_up is off".into())
    );
    let skipped: Vec<String> = sqlx::query_scalar(
        "SELECT json_extract(detail, '$.secret') FROM audit_events
         WHERE action = 'rotate.skip' AND actor = 'system:scheduler'",
    )
    .fetch_all(&deck.ctx.db)
    .await
    .unwrap();
    assert_eq!(skipped, ["MONTHLY_KEY"]);
    assert_eq!(value(&env, "MONTHLY_KEY"), "first");
    let next =
        opsdeck::ops::schedule::next_run(&deck.ctx.config.apps[0].secrets[1], january).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2027, 2, 1, 2, 0, 0).unwrap());
}

#[tokio::test]
async fn on_a_phone_the_overdue_secrets_need_no_sideways_scrolling() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("bot-worker.env");
    std::fs::write(
        &env,
        "GITHUB_WEBHOOK_SECRET_FOR_THE_BOT_WORKER=old-value-1234\n",
    )
    .unwrap();
    let token = dir.path().join("github_token");
    std::fs::write(&token, "github-token").unwrap();
    let server = server::start(&format!(
        r#"[auth]
github_token_file = "{token}"

[[app]]
name = "sitg-bot-worker-production"
env_file = "{env}"

[[app.secret]]
name = "GITHUB_WEBHOOK_SECRET_FOR_THE_BOT_WORKER"
generate = "hex:32"
github_webhook = {{ repo = "sitg-dev/sitg-bot-worker-production", url = "https://bot.example.org/webhooks/github" }}
store = {{ run = ["sh", "-c", "cloudron env set --app communityrule.info SESSION_SECRET=\"$(cat)\""] }}
max_age = "90d"
schedule = "0 4 1 */6 *"
"#,
        token = token.display(),
        env = env.display()
    ))
    .await;
    age_file(&env, 400);
    let (cookie, _) = server.session("ben", Role::Owner).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&server.at("/healthz")).await;
    browser.set_cookie(name, value).await;
    browser.resize(390, 844).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (path, shot) in [
        ("/", "dashboard-overdue"),
        ("/apps/sitg-bot-worker-production", "app-secrets-overdue"),
    ] {
        browser.goto(&server.at(path)).await;
        browser
            .until("return document.body.innerText.includes('overdue by 310 days')")
            .await;
        let overflow = browser
            .js(
                "return document.documentElement.scrollWidth - window.innerWidth",
                serde_json::json!([]),
            )
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path} scrolls sideways by {overflow}px"
        );
        // For a person to look at: target/tmp/<shot>-phone.png, from the
        // secrets section down on the app page.
        browser
            .js(
                "var s = document.querySelector('#secrets table'); if (s) s.scrollIntoView(); return 0",
                serde_json::json!([]),
            )
            .await;
        browser
            .screenshot(&shots.join(format!("{shot}-phone.png")))
            .await;
    }
}
