//! Insights against a real server: a history of jobs and releases written
//! into the database it serves from, at known times, and the figures its
//! pages draw — read from each chart's SVG `<title>` and its "Show
//! numbers" table — against the same figures worked out by hand; a real
//! deploy of a real git repository whose lead time starts at the commit's
//! committer time; the dashboard card's sparkline; who sees which app's
//! figures; and the page in a real browser at 390 px, dark and light.

mod support;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use serde_json::json;
use support::browser::Browser;
use support::history::{self, MIN, SECOND, days_ago};
use support::repos::{Repos, sh_git, sh_git_env};
use support::server::{self, Server};

/// `web` anyone may view; `vault` only admins.
const APPS: &str = r#"
[[app]]
name = "web"
environment = "production"
repo = "/srv/web"

[[app]]
name = "vault"
environment = "production"
repo = "/srv/vault"
permissions = { view = "admin" }
"#;

/// The history of `web` (and a little of `vault`) the figures below are
/// worked out from. Times are UTC, `days_ago(d, h)` = h o'clock d days ago.
async fn seed(s: &Server) {
    let db = &s.ctx.db;
    let at = days_ago;
    // 40 days ago: only the 90-day range sees it. Lead time 6h 06m.
    history::deploy(
        db,
        "web",
        "succeeded",
        at(40, 10),
        Some(6 * MIN),
        Some(at(40, 4)),
    )
    .await;
    // Lead time 2h 04m.
    history::deploy(
        db,
        "web",
        "succeeded",
        at(25, 10),
        Some(4 * MIN),
        Some(at(25, 8)),
    )
    .await;
    // 20 days ago: failed at 10:02, timed out at 11:10, restored by the
    // deploy live at 12:05 — one incident of 2h 03m. Lead time 35m.
    history::deploy(db, "web", "failed", at(20, 10), Some(2 * MIN), None).await;
    history::deploy(db, "web", "timed_out", at(20, 11), Some(10 * MIN), None).await;
    history::deploy(
        db,
        "web",
        "succeeded",
        at(20, 12),
        Some(5 * MIN),
        Some(at(20, 11) + 30 * MIN),
    )
    .await;
    // 12 days ago: live at 9:03 (a commit of exactly a day before), rolled
    // back at 10:01 — an incident of 58m.
    let (_, bad) = history::deploy(
        db,
        "web",
        "succeeded",
        at(12, 9),
        Some(3 * MIN),
        Some(at(13, 9) + 3 * MIN),
    )
    .await;
    history::rollback(db, "web", bad, "succeeded", at(12, 10), Some(MIN)).await;
    // Lead times 1h 02m and 32m.
    history::deploy(
        db,
        "web",
        "succeeded",
        at(8, 9),
        Some(2 * MIN),
        Some(at(8, 8)),
    )
    .await;
    history::deploy(
        db,
        "web",
        "succeeded",
        at(6, 9),
        Some(2 * MIN),
        Some(at(6, 8) + 30 * MIN),
    )
    .await;
    // 5 days ago: interrupted, and nothing has gone live since.
    history::deploy(db, "web", "interrupted", at(5, 14), Some(30 * SECOND), None).await;
    // Cancelled before it started: not a deploy, no duration.
    history::deploy(db, "web", "cancelled", at(3, 9), None, None).await;
    history::job(db, "web", "rotate", "cancelled", at(3, 10), None).await;
    for (i, took) in [10, 20, 30, 40].into_iter().enumerate() {
        let state = if i == 1 { "failed" } else { "succeeded" };
        history::job(
            db,
            "web",
            "action",
            state,
            at(15, 9 + i as i64),
            Some(took * SECOND),
        )
        .await;
    }
    history::job(db, "web", "sweep", "succeeded", at(15, 3), Some(5 * MIN)).await;
    // Before every range.
    history::deploy(db, "web", "failed", at(100, 9), Some(MIN), None).await;

    // vault: three deploys, one failed, within 30 days.
    history::deploy(
        db,
        "vault",
        "succeeded",
        at(9, 9),
        Some(MIN),
        Some(at(9, 8)),
    )
    .await;
    history::deploy(db, "vault", "failed", at(7, 9), Some(MIN), None).await;
    history::deploy(
        db,
        "vault",
        "succeeded",
        at(7, 10),
        Some(MIN),
        Some(at(7, 9)),
    )
    .await;
}

/// The text of the SVG `<title>` of chart `id` on `page`.
fn title(page: &str, id: &str) -> String {
    let open = format!(r#"<title id="{id}-title">"#);
    let start = page
        .find(&open)
        .unwrap_or_else(|| panic!("no chart {id} in {page}"))
        + open.len();
    let end = start + page[start..].find("</title>").unwrap();
    unescape(&page[start..end])
}

/// The "Show numbers" table of chart `id`, as rows of cells.
fn numbers(page: &str, id: &str) -> Vec<Vec<String>> {
    let start = page
        .find(&format!(r#"<figure class="chart" id="chart-{id}">"#))
        .unwrap();
    let figure = &page[start..start + page[start..].find("</figure>").unwrap()];
    let body = &figure[figure.find("<tbody>").unwrap()..figure.find("</tbody>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td>")
                .skip(1)
                .map(|cell| unescape(&cell[..cell.find("</td>").unwrap()]))
                .collect()
        })
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// `days_ago(d, 0)` as the tables write a day.
fn day(d: i64) -> String {
    chrono::DateTime::from_timestamp_millis(days_ago(d, 0))
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

async fn page(s: &Server, path: &str, token: &str) -> String {
    let res = s.get_as(path, token).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn the_figures_of_a_known_history_are_the_ones_worked_out_by_hand() {
    let s = server::start(APPS).await;
    seed(&s).await;
    let viewer = s.token("vera", Role::Viewer).await;

    // The last 30 days of web (the default range), on its own page.
    let html = page(&s, "/apps/web", &viewer).await;
    // Deploys that ran: 25, 20 (×3), 12, 8, 6 and 5 days ago; 8 × 7 / 30.
    assert_eq!(
        title(&html, "deploys"),
        "Deploys per week: 1.9 (8 deploys in the last 30 days, 4 failed)"
    );
    let per_day = numbers(&html, "deploys");
    assert_eq!(per_day.len(), 30);
    assert_eq!(per_day[0][0], day(29));
    assert!(per_day.contains(&row(&[&day(20), "3", "2"])), "{per_day:?}");
    assert!(per_day.contains(&row(&[&day(12), "1", "1"])), "{per_day:?}");
    assert!(per_day.contains(&row(&[&day(3), "0", "0"])), "{per_day:?}");
    // Failed: the failed, the timed out, the rolled back, the interrupted.
    assert_eq!(
        title(&html, "failure-rate"),
        "Change failure rate: 50.0 % (4 of 8 deploys failed)"
    );
    assert_eq!(
        numbers(&html, "failure-rate"),
        [
            row(&["Deploys", "8"]),
            row(&["Failed: the job failed, timed out or was interrupted", "3"]),
            row(&["Failed: went live, later rolled back", "1"]),
            row(&["Change failure rate", "50.0 %"]),
        ]
    );
    // Incidents of 2h 03m and 58m (the median of two is the smaller), and
    // the interrupted deploy nothing has restored.
    assert_eq!(
        title(&html, "restore"),
        "Time to restore: median 58m 00s (2 incidents restored, 1 not yet)"
    );
    let incidents = numbers(&html, "restore");
    assert_eq!(incidents.len(), 3, "{incidents:?}");
    assert_eq!(
        (incidents[0][3].as_str(), incidents[0][4].as_str()),
        ("not yet", "—")
    );
    assert_eq!(incidents[1][4], "58m 00s");
    assert_eq!(incidents[2][4], "2h 03m");
    assert_eq!(incidents[2][2].matches('#').count(), 2, "{incidents:?}");
    // Lead times 32m, 35m, 1h 02m, 2h 04m, 1d 00h: nearest-rank p50 is the
    // 3rd, p95 the 5th.
    assert_eq!(
        title(&html, "lead"),
        "Lead time (commit → live): median 1h 02m, p95 1d 00h (5 deploys)"
    );
    assert_eq!(
        numbers(&html, "lead"),
        [
            row(&["under 1 h", "2"]),
            row(&["1–6 h", "2"]),
            row(&["6–24 h", "0"]),
            row(&["1–7 days", "1"]),
            row(&["a week or more", "0"]),
            row(&["median", "1h 02m"]),
            row(&["p95", "1d 00h"]),
            row(&["longest", "1d 00h"]),
        ]
    );
    // Deploys took 30s, 2m, 2m, 2m, 3m, 4m, 5m and 10m: p50 is the 4th of
    // 8, p95 the 8th; actions 10, 20, 30 and 40 s. The cancelled rotation
    // never ran.
    assert_eq!(
        title(&html, "durations"),
        "Job duration: deploy p50 2m 00s, p95 10m 00s (8 jobs); \
         rollback p50 1m 00s, p95 1m 00s (1 job); \
         sweep p50 5m 00s, p95 5m 00s (1 job); \
         action p50 20.0s, p95 40.0s (4 jobs)"
    );
    assert_eq!(
        numbers(&html, "durations")[0],
        row(&["deploy", "8", "2m 00s", "10m 00s", "10m 00s"])
    );

    // 90 days: the deploy 40 days ago joins (lead time 6h 06m).
    let html = page(&s, "/apps/web?range=90d", &viewer).await;
    assert_eq!(
        title(&html, "deploys"),
        "Deploys per week: 0.7 (9 deploys in the last 90 days, 4 failed)"
    );
    assert_eq!(numbers(&html, "deploys").len(), 13);
    assert_eq!(
        title(&html, "failure-rate"),
        "Change failure rate: 44.4 % (4 of 9 deploys failed)"
    );
    assert_eq!(
        title(&html, "lead"),
        "Lead time (commit → live): median 1h 02m, p95 1d 00h (6 deploys)"
    );
    assert!(html.contains(r#"<option value="90d" selected>90 days</option>"#));

    // 7 days: 6 days ago went live, 5 days ago was interrupted.
    let html = page(&s, "/apps/web?range=7d", &viewer).await;
    assert_eq!(
        title(&html, "deploys"),
        "Deploys per week: 2.0 (2 deploys in the last 7 days, 1 failed)"
    );
    assert_eq!(
        title(&html, "restore"),
        "Time to restore: not restored yet (1 incident)"
    );
    assert_eq!(
        title(&html, "lead"),
        "Lead time (commit → live): median 32m 00s, p95 32m 00s (1 deploy)"
    );
}

#[tokio::test]
async fn insights_list_only_the_apps_the_viewer_may_see() {
    let s = server::start(APPS).await;
    seed(&s).await;
    let viewer = s.token("vera", Role::Viewer).await;
    let admin = s.token("ada", Role::Admin).await;

    let html = page(&s, "/insights", &viewer).await;
    assert!(
        html.contains(r#"<a href="/insights">Insights</a>"#),
        "{html}"
    );
    assert_eq!(
        title(&html, "deploys"),
        "Deploys per week: 1.9 (8 deploys in the last 30 days, 4 failed)"
    );
    assert!(
        html.contains(r#"<a href="/apps/web?range=30d#insights">web</a>"#),
        "{html}"
    );
    assert!(!html.contains("vault"), "a viewer sees vault: {html}");

    // An admin sees both, together and each.
    let html = page(&s, "/insights", &admin).await;
    assert_eq!(
        title(&html, "deploys"),
        "Deploys per week: 2.6 (11 deploys in the last 30 days, 5 failed)"
    );
    assert_eq!(
        title(&html, "failure-rate"),
        "Change failure rate: 45.5 % (5 of 11 deploys failed)"
    );
    // vault's failure 7 days ago ended at 9:01 and was restored at 10:01:
    // 58m, 1h 00m and 2h 03m have 1h 00m in the middle.
    assert_eq!(
        title(&html, "restore"),
        "Time to restore: median 1h 00m (3 incidents restored, 1 not yet)"
    );
    let vault = &html[html.find(r#"?range=30d#insights">vault</a>"#).unwrap()..];
    let vault = &vault[..vault.find("</tr>").unwrap()];
    assert!(
        vault.contains(r#"<td data-label="Change failure rate">33.3 %</td>"#),
        "{vault}"
    );
    assert!(
        vault.contains(r#"<td data-label="Time to restore (median)">1h 00m</td>"#),
        "{vault}"
    );

    // vault's own page, figures and all, is refused to the viewer, and
    // the refusal is audited.
    let res = s.get_as("/apps/vault?range=7d", &viewer).await;
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(!body.contains("Change failure rate"), "{body}");
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE app = 'vault' AND action = 'view' AND outcome = 'denied' AND actor = 'token:vera'",
    )
    .fetch_one(&s.ctx.db)
    .await
    .unwrap();
    assert_eq!(denied, 1);

    // Someone who may see no app sees no figures at all.
    let nobody = server::start(
        "[[app]]\nname = \"vault\"\nrepo = \"/srv/vault\"\npermissions = { view = \"owner\" }\n",
    )
    .await;
    let token = nobody.token("vera", Role::Viewer).await;
    let html = page(&nobody, "/insights", &token).await;
    assert!(html.contains("There are no apps you may see"), "{html}");
    assert!(!html.contains("<svg"), "{html}");
}

#[tokio::test]
async fn a_range_other_than_7d_30d_or_90d_is_refused() {
    let s = server::start(APPS).await;
    let viewer = s.token("vera", Role::Viewer).await;
    for path in ["/insights?range=1y", "/apps/web?range=365d"] {
        let res = s.get_as(path, &viewer).await;
        assert_eq!(res.status(), 400, "{path}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains("range must be 7d, 30d or 90d, not"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_card_draws_the_last_30_days_of_deploys() {
    let s = server::start(APPS).await;
    seed(&s).await;
    let viewer = s.token("vera", Role::Viewer).await;
    let html = page(&s, "/", &viewer).await;
    let card = &html[html.find(r#"<a href="/apps/web">web</a>"#).unwrap()..];
    let spark = &card[card.find(r#"<svg class="spark""#).unwrap()..];
    let spark = &spark[..spark.find("</svg>").unwrap()];
    assert!(
        spark.contains(r#"<title id="spark-web">Deploys in the last 30 days: 8, 4 failed</title>"#),
        "{spark}"
    );
    // A column a day: a tick on the 24 days without a deploy, a green part
    // for those that went well (25, 20, 8 and 6 days ago) and a red one
    // for the failed (20, 12 and 5 days ago).
    assert_eq!(spark.matches(r#"class="bar-none""#).count(), 24, "{spark}");
    assert_eq!(spark.matches(r#"class="bar-ok""#).count(), 4, "{spark}");
    assert_eq!(spark.matches(r#"class="bar-failed""#).count(), 3, "{spark}");
    assert!(card.contains("8 in 30 days, 4 failed"), "{card}");
    // Its refresh carries it too.
    let now = page(&s, "/apps/web/now", &viewer).await;
    assert!(now.contains(r#"<svg class="spark""#), "{now}");
}

/// Commits `text` as `version` in the author's clone with these dates
/// (Unix seconds) and pushes it; the SHA.
fn commit_dated(repos: &Repos, text: &str, authored: i64, committed: i64) -> String {
    std::fs::write(repos.author.join("version"), text).unwrap();
    let authored = format!("@{authored} +0000");
    let committed = format!("@{committed} +0000");
    let dates = [
        ("GIT_AUTHOR_DATE", authored.as_str()),
        ("GIT_COMMITTER_DATE", committed.as_str()),
    ];
    sh_git_env(&repos.author, &["commit", "-qam", "Version 2"], &dates);
    sh_git(&repos.author, &["push", "-q", "origin", "main"]);
    sh_git(&repos.author, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn a_real_deploy_counts_its_lead_time_from_the_commit_time() {
    let repos = Repos::new();
    let s = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\n",
        repos.app.display()
    ))
    .await;
    // Written two days ago, committed (rebased) three hours ago.
    let now = history::now() / 1000;
    let committed = now - 3 * 3600;
    let sha = commit_dated(&repos, "v2", now - 2 * 86_400, committed);
    let owner = support::deck::actor("ada", Role::Owner);
    let job = opsdeck::ops::deploy::request(&s.ctx, &owner, "web", "main")
        .await
        .unwrap();
    assert_eq!(s.finished(job).await, State::Succeeded);
    let (stored_sha, stored_at): (String, Option<i64>) =
        sqlx::query_as("SELECT sha, committed_at FROM releases WHERE job_id = ?")
            .bind(job)
            .fetch_one(&s.ctx.db)
            .await
            .unwrap();
    assert_eq!((stored_sha, stored_at), (sha, Some(committed * 1000)));

    // Live within a minute of the deploy: 3h 00m from the commit.
    let token = s.token("vera", Role::Viewer).await;
    let html = page(&s, "/apps/web", &token).await;
    assert_eq!(
        title(&html, "lead"),
        "Lead time (commit → live): median 3h 00m, p95 3h 00m (1 deploy)"
    );
    assert_eq!(
        title(&html, "failure-rate"),
        "Change failure rate: 0.0 % (0 of 1 deploy failed)"
    );
    // Its duration is counted as the job ends (the database keeps the
    // per-day durations, migration 0160): the one deploy, nothing else.
    let durations = title(&html, "durations");
    assert!(
        durations.starts_with("Job duration: deploy p50 ") && durations.ends_with(" (1 job)"),
        "{durations}"
    );
}

/// Signs `browser` in with a session cookie of `s`.
async fn sign_in(browser: &Browser, s: &Server, role: Role) {
    let (cookie, _) = s.session("vera", role).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&s.at("/healthz")).await;
    browser.set_cookie(name, value).await;
}

#[tokio::test]
async fn the_charts_fit_a_phone_and_read_in_the_dark() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = server::start(APPS).await;
    seed(&s).await;
    sign_in(&browser, &s, Role::Admin).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));

    for (width, size) in [(390, "phone"), (1366, "laptop")] {
        browser.resize(width, 900).await;
        for (path, name) in [
            ("/insights?range=90d", "insights"),
            ("/apps/web", "app"),
            ("/", "dashboard"),
        ] {
            browser.goto(&s.at(path)).await;
            browser
                .until("return document.querySelector('svg title') !== null")
                .await;
            let overflow = browser.sideways_overflow().await;
            assert!(
                overflow <= 0,
                "{path} at {width} px scrolls sideways by {overflow}px"
            );
            // Every chart fits its box, at least 300 px wide on a phone.
            let widths = browser
                .js(
                    "return [...document.querySelectorAll('.chart svg')].map(s => s.getBoundingClientRect().right <= window.innerWidth && s.getBoundingClientRect().width)",
                    json!([]),
                )
                .await;
            for w in widths.as_array().unwrap() {
                assert!(w.as_f64().is_some_and(|w| w >= 300.0), "{path}: {widths}");
            }
            browser
                .screenshot(&shots.join(format!("insights-{name}-{size}.png")))
                .await;
        }
    }

    // The numbers open without JavaScript's help: a <details>.
    browser.goto(&s.at("/insights")).await;
    let shown = "return document.querySelector('#chart-failure-rate table').checkVisibility()";
    assert_eq!(browser.js(shown, json!([])).await, json!(false));
    browser.click("#chart-failure-rate summary").await;
    assert_eq!(browser.js(shown, json!([])).await, json!(true));

    // The range form: a plain GET.
    browser
        .js(
            "document.querySelector('#insights-range').value = '7d'; return true",
            json!([]),
        )
        .await;
    browser.click(".range-form button").await;
    browser
        .until("return location.search === '?range=7d'")
        .await;

    // Colours come from the page's variables: light, then dark.
    let fill = "return getComputedStyle(document.querySelector('.chart rect.bar-ok')).fill";
    assert_eq!(browser.js(fill, json!([])).await, "rgb(23, 107, 48)");
    browser.prefer_dark(true).await;
    browser.goto(&s.at("/insights")).await;
    assert_eq!(
        browser
            .js(
                "return matchMedia('(prefers-color-scheme: dark)').matches",
                json!([])
            )
            .await,
        json!(true)
    );
    assert_eq!(browser.js(fill, json!([])).await, "rgb(111, 220, 140)");
    let text = "return getComputedStyle(document.querySelector('.chart text')).fill";
    assert_eq!(browser.js(text, json!([])).await, "rgb(154, 163, 178)");
    browser.resize(390, 900).await;
    browser
        .screenshot(&shots.join("insights-dark-phone.png"))
        .await;

    let console = browser.console().await;
    assert!(console.iter().all(|l| !l.contains("SEVERE")), "{console:?}");
}

/// History written before migration 0160 (which keeps durations and lead
/// times per day): the upgraded database shows the figures a database
/// that kept them from the start shows, and a deploy running across the
/// upgrade counts once when it ends.
#[tokio::test]
async fn history_from_before_the_per_day_lists_is_counted() {
    async fn before_upgrade(db: &sqlx::SqlitePool) -> i64 {
        history::deploy(
            db,
            "web",
            "succeeded",
            days_ago(40, 10),
            Some(6 * MIN),
            Some(days_ago(40, 4)),
        )
        .await;
        history::deploy(db, "web", "failed", days_ago(3, 9), Some(2 * MIN), None).await;
        history::job(
            db,
            "web",
            "sweep",
            "succeeded",
            days_ago(2, 3),
            Some(5 * MIN),
        )
        .await;
        // Started, with its release, not ended: it ends after the upgrade.
        let running = history::begun(db, "web", "deploy", days_ago(1, 10), true).await;
        history::release(
            db,
            "web",
            running,
            "deploy",
            days_ago(1, 10),
            Some(days_ago(1, 8)),
            None,
        )
        .await;
        running
    }
    async fn end(db: &sqlx::SqlitePool, job: i64) {
        history::end(db, job, "succeeded", days_ago(1, 10) + 3 * MIN).await;
    }
    let figures = |db: sqlx::SqlitePool| async move {
        let apps = ["web".to_owned()];
        let mut all = Vec::new();
        for range in opsdeck::insights::Range::ALL {
            let of = opsdeck::insights::of(&db, &apps, range, history::now())
                .await
                .unwrap();
            all.push(format!("{:?} {:?}", of.overall, of.durations));
        }
        all
    };

    let old_dir = tempfile::tempdir().unwrap();
    let old = opsdeck::db::connect(&old_dir.path().join("opsdeck.db"))
        .await
        .unwrap();
    support::server::migrate_before(&old, 160).await;
    let running = before_upgrade(&old).await;
    old.close().await;
    let upgraded = opsdeck::db::open(old_dir.path()).await.unwrap();
    end(&upgraded, running).await;

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = opsdeck::db::open(fresh_dir.path()).await.unwrap();
    let running = before_upgrade(&fresh).await;
    end(&fresh, running).await;

    let (upgraded, fresh) = (figures(upgraded).await, figures(fresh).await);
    assert_eq!(upgraded, fresh);
    // Both counted what was written. Over 90 days: lead times 6h 06m and
    // 2h 03m (the failed deploy shipped nothing); deploys took 6, 2 and 3
    // minutes, the sweep 5.
    let quarter = &fresh[2];
    for counted in [
        "lead: Some(Spread { count: 2, p50: 7380000, p95: 21960000,",
        r#"KindSpread { kind: "deploy", spread: Spread { count: 3, p50: 180000, p95: 360000,"#,
        r#"KindSpread { kind: "sweep", spread: Spread { count: 1, p50: 300000,"#,
    ] {
        assert!(quarter.contains(counted), "{counted} in {quarter}");
    }
}
