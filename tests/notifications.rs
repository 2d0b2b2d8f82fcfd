//! Notifications and the health watch, against the real `opsdeck serve`
//! and a real HTTP receiver run by the test: a `json` receiver gets a
//! failed job's event signed with HMAC-SHA256 of the body; one answering
//! 500 three times gets the same event once it answers 200 — across a
//! restart of opsdeck between tries; a health check that starts failing
//! sends `health.down` once and `health.up` once when it recovers, and
//! the app page's uptime bar shows the gap.

mod support;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::cli::Instance;

/// What the receiver saw of one request: its headers and body.
#[derive(Clone, Debug)]
struct Got {
    headers: HeaderMap,
    body: String,
}

/// A receiver on a loopback port: `/hook` answers each POST with the next
/// status of `answers` (200 once they run out) and keeps what it got;
/// `/health` answers `health` (a status code).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    answers: Arc<Mutex<Vec<u16>>>,
    health: Arc<AtomicU16>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Receiver, String) {
        let receiver = Receiver {
            answers: Arc::new(Mutex::new(answers.iter().rev().copied().collect())),
            health: Arc::new(AtomicU16::new(200)),
            ..Receiver::default()
        };
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .route("/health", get(health))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until it has been sent `n` requests (at most `within`).
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} requests, not {n}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    r.got.lock().unwrap().push(Got { headers, body });
    let status = r.answers.lock().unwrap().pop().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

async fn health(State(r): State<Receiver>) -> StatusCode {
    StatusCode::from_u16(r.health.load(Ordering::SeqCst)).unwrap()
}

fn signature(key: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn header<'a>(got: &'a Got, name: &str) -> &'a str {
    got.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {got:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn a_failed_job_reaches_a_receiver_signed_and_again_after_500s_and_a_restart() {
    let (receiver, url) = Receiver::start(&[500, 500, 500]).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("notify.key");
    std::fs::write(&key_file, "s3cret-key\n").unwrap();
    let opsdeck = Instance::new(&format!(
        r#"
[[app]]
name = "site"

[[app.action]]
name = "break"
run = ["sh", "-c", "echo going wrong; exit 3"]

[[notify]]
name = "on-call"
url = "{url}/hook"
format = "json"
secret_file = "{}"
events = ["job.failed", "deploy.succeeded"]
backoff = "1s"
"#,
        key_file.display()
    ));
    let token = opsdeck.token("ops", "owner");
    let server = opsdeck.serve().await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/apps/site/actions/break/run", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    // Two tries answered 500 (the second a second after the first), then
    // opsdeck stops before the third.
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let (status, _) = server.stop();
    assert!(status.success());
    let first = &got[0];
    let event: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(event["event"], "job.failed");
    assert_eq!(event["app"], "site");
    assert_eq!(event["detail"]["state"], "failed");
    assert!(
        event["text"]
            .as_str()
            .unwrap()
            .contains("action break failed"),
        "{event}"
    );
    assert_eq!(header(first, "x-opsdeck-event"), "job.failed");
    assert_eq!(
        header(first, "x-opsdeck-signature"),
        signature("s3cret-key", &first.body)
    );

    // The next start picks the pending row up: a third 500, then a 200.
    let server = opsdeck.serve().await;
    let got = receiver.wait_for(4, Duration::from_secs(30)).await;
    for again in &got[1..] {
        assert_eq!(again.body, first.body, "every try sends the same event");
        assert_eq!(
            header(again, "x-opsdeck-delivery"),
            header(first, "x-opsdeck-delivery")
        );
        assert_eq!(
            header(again, "x-opsdeck-signature"),
            signature("s3cret-key", &again.body)
        );
    }
    // Delivered once: nothing more comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got().len(), 4);

    let page = client
        .get(format!("{}/notifications", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("1 delivered"), "{page}");
    assert!(page.contains("0 pending"), "{page}");
    assert!(
        page.contains(r#"<span class="state">delivered</span>"#),
        "{page}"
    );
    assert!(
        page.contains("answered 500 Internal Server Error"),
        "{page}"
    );

    let operator = opsdeck.token("op", "operator");
    let refused = client
        .get(format!("{}/notifications", server.url))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "admins only");

    let db = opsdeck.sqlite().await;
    let (attempts, state): (i64, String) =
        sqlx::query_as("SELECT attempts, state FROM notify_outbox")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((attempts, state.as_str()), (4, "delivered"));
    let audited: Vec<(String, String)> =
        sqlx::query_as("SELECT outcome, detail FROM audit_events WHERE action = 'notify.deliver'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(audited[0].1.contains(r#""attempts":4"#), "{audited:?}");
}

#[tokio::test]
async fn a_receiver_that_never_answers_well_is_given_up_on_and_audited() {
    let (receiver, url) = Receiver::start(&[503, 503]).await;
    let opsdeck = Instance::new(&format!(
        r#"
[[app]]
name = "site"

[[app.action]]
name = "break"
run = ["false"]

[[notify]]
name = "chat"
url = "{url}/hook"
format = "slack"
events = ["job.failed"]
backoff = "1s"
attempts = 2
"#
    ));
    let token = opsdeck.token("ops", "owner");
    let server = opsdeck.serve().await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/apps/site/actions/break/run", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let slack: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("site: action break failed"),
        "{slack}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.got().len(), 2, "two tries, then it gives up");
    let db = opsdeck.sqlite().await;
    let (state, error): (String, String) =
        sqlx::query_as("SELECT state, last_error FROM notify_outbox")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(state, "failed");
    assert!(error.contains("answered 503"), "{error}");
    let (outcome,): (String,) =
        sqlx::query_as("SELECT outcome FROM audit_events WHERE action = 'notify.give_up'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(outcome, "failed");
    drop(server);
}

#[tokio::test]
async fn a_failing_health_check_sends_down_once_then_up_once_and_the_uptime_bar_shows_the_gap() {
    let (receiver, url) = Receiver::start(&[]).await;
    let opsdeck = Instance::new(&format!(
        r#"
[[app]]
name = "site"

[[app.health]]
url = "{url}/health"
timeout = "2s"
interval = "1s"

[[notify]]
name = "chat"
url = "{url}/hook"
format = "matrix"
events = ["health.down", "health.up"]
backoff = "1s"
"#
    ));
    let token = opsdeck.token("ops", "viewer");
    let server = opsdeck.serve().await;
    let db = opsdeck.sqlite().await;
    let samples = |up: bool| {
        let db = db.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM health_samples WHERE up = ?")
                .bind(up)
                .fetch_one(&db)
                .await
                .unwrap();
            n
        }
    };
    let wait_samples = |up: bool, n: i64| async move {
        for _ in 0..200 {
            if samples(up).await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} samples with up = {up}");
    };
    wait_samples(true, 2).await;
    assert!(
        receiver.got().is_empty(),
        "healthy from the start: nothing to say"
    );

    receiver.health.store(500, Ordering::SeqCst);
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let down: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(down["msgtype"], "m.text");
    let body = down["body"].as_str().unwrap();
    assert!(body.starts_with("site is down: "), "{body}");
    assert!(body.contains("500"), "{body}");
    // Still down for a few more probes: no second message.
    wait_samples(false, 3).await;
    assert_eq!(receiver.got().len(), 1);

    receiver.health.store(200, Ordering::SeqCst);
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let up: serde_json::Value = serde_json::from_str(&got[1].body).unwrap();
    assert!(
        up["body"]
            .as_str()
            .unwrap()
            .starts_with("site is healthy again"),
        "{up}"
    );
    let ups = samples(true).await;
    wait_samples(true, ups + 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events: Vec<String> = receiver
        .got()
        .iter()
        .map(|g| header(g, "x-opsdeck-event").to_string())
        .collect();
    assert_eq!(events, ["health.down", "health.up"]);

    let page = reqwest::Client::new()
        .get(format!("{}/apps/site", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let bar = page
        .split(r#"<figure class="chart" id="chart-uptime-24h">"#)
        .nth(1)
        .expect("the 24 h uptime bar")
        .split("</figure>")
        .next()
        .unwrap();
    let down_probes = samples(false).await;
    let all = down_probes + samples(true).await;
    assert!(
        bar.contains(&format!("({down_probes} of {all} probes down)</title>")),
        "{bar}"
    );
    assert!(
        bar.contains(r#"class="bar-failed""#),
        "the gap is drawn: {bar}"
    );
    assert!(bar.contains("down in "), "a slot says so: {bar}");
    assert!(page.contains(r#"id="chart-uptime-7d""#));
}

#[tokio::test]
async fn an_overdue_secret_is_sent_once_also_across_a_restart() {
    let (receiver, url) = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, "SESSION_KEY=old-session-key-1234\nAPI_KEY=fresh\n").unwrap();
    // Last changed 100 days ago: 10 days past a 90-day max_age.
    let old = std::time::SystemTime::now() - Duration::from_secs(100 * 86400);
    std::fs::File::options()
        .write(true)
        .open(&env)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let opsdeck = Instance::new(&format!(
        r#"
[[app]]
name = "web"
env_file = "{}"

[[app.secret]]
name = "SESSION_KEY"
generate = "hex:32"
max_age = "90d"

[[app.secret]]
name = "API_KEY"
generate = "hex:32"
max_age = "200d"

[[notify]]
name = "chat"
url = "{url}/hook"
format = "slack"
events = ["secret.overdue"]
"#,
        env.display()
    ));
    let server = opsdeck.serve().await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let slack: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("web: secret SESSION_KEY is overdue by 10 days (max_age 90 days"),
        "{text}"
    );
    assert!(text.ends_with("/apps/web"), "{text}");
    drop(server);
    let server = opsdeck.serve().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.got().len(), 1, "once per overdue stretch");
    drop(server);
}

#[tokio::test]
async fn a_succeeded_deploy_and_a_request_awaiting_approval_are_sent() {
    let (receiver, url) = Receiver::start(&[]).await;
    let opsdeck = Instance::new(&format!(
        r#"
[[app]]
name = "web"
strategy = "command"
deploy = [ {{ run = ["true"] }} ]

[[app.action]]
name = "tidy"
run = ["true"]
approval = "owner"

[[notify]]
name = "chat"
url = "{url}/hook"
format = "slack"
events = ["deploy.succeeded", "approval.requested", "job.failed"]
apps = ["web"]
"#
    ));
    let token = opsdeck.token("ops", "admin");
    let server = opsdeck.serve().await;
    let client = reqwest::Client::new();
    for (path, body) in [
        ("/api/apps/web/deploy", serde_json::json!({"ref": "v1"})),
        ("/api/apps/web/actions/tidy/run", serde_json::json!({})),
    ] {
        let res = client
            .post(format!("{}{path}", server.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        receiver.wait_for(1, Duration::from_secs(20)).await;
    }
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let texts: Vec<String> = got
        .iter()
        .map(|g| {
            serde_json::from_str::<serde_json::Value>(&g.body).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        texts[0].starts_with("web: deploy v1 succeeded (job 1)"),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with(
            "web: job 2 by token:ops awaits the approval of someone with the owner role"
        ),
        "{texts:?}"
    );
    assert!(texts[1].ends_with("/jobs/2"), "{texts:?}");
    drop(server);
}

/// The uptime bar and `/notifications` in a real browser: at 390 px and
/// on a laptop nothing scrolls sideways and the bar is at least 300 px
/// wide; its gap is drawn in the page's colours, light and dark.
#[tokio::test]
async fn the_uptime_bar_and_the_outbox_fit_a_phone_and_read_in_the_dark() {
    use opsdeck::auth::Role;
    use serde_json::json;
    use support::browser::Browser;
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = support::server::start(
        "[[app]]\nname = \"site\"\nhealth = { url = \"http://127.0.0.1:1/\", interval = \"1m\" }\n\n[[notify]]\nname = \"chat\"\nurl = \"http://127.0.0.1:1/hook\"\nformat = \"slack\"\nevents = [\"health.down\"]\n",
    )
    .await;
    // An hour of probes a minute apart, down for ten minutes in the middle.
    let now = chrono::Utc::now().timestamp_millis();
    for minute in 0..60 {
        sqlx::query("INSERT INTO health_samples (app, at, up) VALUES ('site', ?, ?)")
            .bind(now - (60 - minute) * 60_000)
            .bind(!(25..35).contains(&minute))
            .execute(&s.ctx.db)
            .await
            .unwrap();
    }
    opsdeck::notify::emit(
        &s.ctx.db,
        &s.ctx.config,
        opsdeck::notify::Event {
            kind: "health.down",
            app: "site",
            job: None,
            text: "site is down: http://127.0.0.1:1/: connection refused".into(),
            detail: json!({}),
        },
    )
    .await;
    let (cookie, _) = s.session("ada", Role::Admin).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&s.at("/healthz")).await;
    browser.set_cookie(name, value).await;

    for width in [390, 1366] {
        browser.resize(width, 900).await;
        for path in ["/apps/site", "/notifications"] {
            browser.goto(&s.at(path)).await;
            let overflow = browser.sideways_overflow().await;
            assert!(
                overflow <= 0,
                "{path} at {width} px scrolls sideways by {overflow}px"
            );
        }
        browser.goto(&s.at("/apps/site")).await;
        let widths = browser
            .js(
                "return [...document.querySelectorAll('#uptime .chart svg')].map(s => s.getBoundingClientRect().right <= window.innerWidth && s.getBoundingClientRect().width)",
                json!([]),
            )
            .await;
        let widths = widths.as_array().unwrap();
        assert_eq!(widths.len(), 2, "24 h and 7 d");
        for w in widths {
            assert!(w.as_f64().is_some_and(|w| w >= 300.0), "{widths:?}");
        }
    }
    let title = "return document.querySelector('#chart-uptime-24h svg > title').textContent";
    assert_eq!(
        browser.js(title, json!([])).await,
        "Uptime, last 24 hours: 83.3 % up (10 of 60 probes down)"
    );
    let fill = "return getComputedStyle(document.querySelector('#uptime rect.bar-failed')).fill";
    let light = browser.js(fill, json!([])).await;
    browser.prefer_dark(true).await;
    browser.goto(&s.at("/apps/site")).await;
    let dark = browser.js(fill, json!([])).await;
    assert_ne!(light, dark, "the gap takes the dark theme's colour");
    let console = browser.console().await;
    assert!(console.iter().all(|l| !l.contains("SEVERE")), "{console:?}");
}

/// A watched app's dashboard card says its last 24 hours' uptime (the
/// figure of its page's bar); an app nothing watches says nothing of it.
#[tokio::test]
async fn the_dashboard_card_says_the_last_days_uptime() {
    use opsdeck::auth::Role;
    let s = support::server::start(
        "[[app]]\nname = \"site\"\nhealth = { url = \"http://127.0.0.1:1/\", interval = \"1h\" }\n\n[[app]]\nname = \"quiet\"\n",
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    // Eight probes today, one down; one two days ago (outside), down.
    for (hours_ago, up) in [
        (1, true),
        (2, true),
        (3, false),
        (4, true),
        (5, true),
        (6, true),
        (7, true),
        (8, true),
        (48, false),
    ] {
        sqlx::query("INSERT INTO health_samples (app, at, up) VALUES ('site', ?, ?)")
            .bind(now - hours_ago * 3_600_000)
            .bind(up)
            .execute(&s.ctx.db)
            .await
            .unwrap();
    }
    let (cookie, _) = s.session("ada", Role::Viewer).await;
    let page = s.page("/", &cookie).await;
    assert!(
        page.contains("<dt>Uptime</dt>\n    <dd>87.5 % up (1 of 8 probes down) <span class=\"muted\">in the last 24 h</span></dd>"),
        "{page}"
    );
    assert_eq!(
        page.matches("<dt>Uptime</dt>").count(),
        1,
        "only the watched app"
    );
}
