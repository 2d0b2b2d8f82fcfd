//! The dashboard in a real headless Chromium, as a user meets it: the CSP
//! lets htmx, its SSE extension and app.js run (and nothing inline), an
//! action asks before it runs, its job's output appears, times show in the
//! reader's zone, and a phone-sized window needs no sideways scrolling.

mod support;

use opsdeck::auth::Role;
use serde_json::json;
use support::browser::Browser;
use support::server::start;

const APPS: &str = r#"
[[app]]
name = "rfc-app"
environment = "production"

[[app.action]]
name = "hello"
run = ["sh", "-c", "echo hello from rfc-app; echo second line"]

[[app.action]]
name = "chatter"
run = ["sh", "-c", "for i in $(seq 1 600); do echo \"line $i\"; sleep 0.01; done"]
"#;

/// Signs `browser` in as ben with `role` (the session's cookie, set on the
/// server's site).
async fn sign_in(browser: &Browser, s: &support::server::Server, role: Role) {
    let (cookie, _) = s.session("ben", role).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&s.at("/healthz")).await;
    browser.set_cookie(name, value).await;
}

/// Waits until a click's navigation reaches a URL ending with `url` (with
/// JavaScript off, only WebDriver's own view of the page can tell).
async fn arrives_at(browser: &Browser, url: &str) {
    for _ in 0..200 {
        if browser.url().await.ends_with(url) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("never reached {url}; at {}", browser.url().await);
}

#[tokio::test]
async fn an_operator_runs_an_action_from_the_dashboard_and_sees_its_output() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = start(APPS).await;
    sign_in(&browser, &s, Role::Operator).await;

    browser.goto(&s.at("/")).await;
    assert_eq!(
        browser.js("return document.title", json!([])).await,
        "Apps · opsdeck"
    );
    let htmx = browser.until("return window.htmx && htmx.version").await;
    assert!(htmx.as_str().unwrap().starts_with("2."), "{htmx}");
    let nav = browser
        .js("return document.querySelector('.who').innerText", json!([]))
        .await;
    assert!(nav.as_str().unwrap().contains("ben"), "{nav}");

    // The button asks first; saying no starts nothing.
    browser
        .click("form[action='/apps/rfc-app/actions/hello/run'] button")
        .await;
    assert_eq!(browser.dialog().await, "Run hello on rfc-app (production)?");
    browser.dismiss_dialog().await;
    assert_eq!(s.job_count().await, 0);

    browser
        .click("form[action='/apps/rfc-app/actions/hello/run'] button")
        .await;
    browser.dialog().await;
    browser.accept_dialog().await;
    browser
        .until("return location.pathname === '/jobs/1'")
        .await;
    let output = browser
        .until(
            "var t = document.body.innerText; \
             return t.includes('second line') && document.querySelector('#job-state').innerText.trim() === 'succeeded' && t",
        )
        .await;
    assert!(
        output.as_str().unwrap().contains("hello from rfc-app"),
        "{output}"
    );

    // Times read as how long ago, the UTC time on hover.
    browser.goto(&s.at("/apps/rfc-app")).await;
    let time = browser
        .until(
            "var t = document.querySelector('time[datetime]'); return t && [t.innerText, t.title]",
        )
        .await;
    assert_eq!(time[0], "just now", "{time}");
    assert!(time[1].as_str().unwrap().ends_with(" UTC"), "{time}");

    // Readable on a phone: nothing wider than the screen.
    browser.resize(390, 844).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Each page is measured once what a user came for is on screen (the
    // job's output is replayed over SSE after the page loads).
    for (path, name, shown) in [
        ("/", "dashboard", "rfc-app"),
        ("/apps/rfc-app", "app", "hello"),
        ("/jobs/1", "job", "second line"),
    ] {
        browser.goto(&s.at(path)).await;
        browser
            .until(&format!(
                "return document.body.innerText.includes('{shown}')"
            ))
            .await;
        let overflow = browser.sideways_overflow().await;
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow}px");
        // For a person to look at: target/tmp/<page>-phone.png.
        browser
            .screenshot(&shots.join(format!("{name}-phone.png")))
            .await;
    }

    // Nothing was refused by the CSP, nothing failed to load.
    let console = browser.console().await;
    assert!(
        console.iter().all(|l| !l.contains("SEVERE")),
        "console errors: {console:#?}"
    );
}

/// With JavaScript off there is no dialog: the server asks instead. A
/// confirm-guarded action answers with a confirmation page, runs nothing
/// until "Yes", and "No" leads back; Revoke asks too, and the viewer's own
/// session is marked.
#[tokio::test]
async fn without_javascript_a_risky_button_asks_on_a_page_and_runs_only_after_yes() {
    let Some(browser) = Browser::without_javascript().await else {
        return;
    };
    let s = start(APPS).await;
    sign_in(&browser, &s, Role::Owner).await;

    let run = "form[action='/apps/rfc-app/actions/hello/run'] button";
    browser.goto(&s.at("/")).await;
    browser.click(run).await;
    arrives_at(&browser, &s.at("/apps/rfc-app/actions/hello/run")).await;
    let asked = browser.text().await;
    assert!(
        asked.contains("Confirm") && asked.contains("Run hello on rfc-app (production)?"),
        "{asked}"
    );
    assert!(asked.contains("Nothing has run yet."), "{asked}");
    assert_eq!(s.job_count().await, 0, "asked, not run");

    // No: back where the button was, nothing ran.
    browser.click("#confirm-no").await;
    arrives_at(&browser, &s.at("/")).await;
    assert_eq!(s.job_count().await, 0);

    // Yes: it runs, and the job page shows it.
    browser.click(run).await;
    arrives_at(&browser, &s.at("/apps/rfc-app/actions/hello/run")).await;
    browser.click("#confirm-yes").await;
    arrives_at(&browser, &s.at("/jobs/1")).await;
    assert_eq!(s.job_count().await, 1);
    assert_eq!(s.finished(1).await, opsdeck::jobs::State::Succeeded);

    // Sessions: this browser's own is marked, and Revoke asks first.
    browser.goto(&s.at("/sessions")).await;
    let sessions = browser.text().await;
    assert!(sessions.contains("ben this browser"), "{sessions}");
    browser.click("form[action^='/sessions/'] button").await;
    arrives_at(&browser, "/revoke").await;
    let asked = browser.text().await;
    assert!(
        asked.contains("Revoke your own session? This browser is signed out at once."),
        "{asked}"
    );
    browser.click("#confirm-no").await;
    arrives_at(&browser, &s.at("/sessions")).await;
    assert!(browser.text().await.contains("Sign out"), "still signed in");
}

/// A long job's output follows its tail in a box of its own, so the state
/// stays on screen; scrolling up pauses following; the clock ticks.
#[tokio::test]
async fn the_job_output_follows_its_tail_until_the_reader_scrolls_up() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = start(APPS).await;
    sign_in(&browser, &s, Role::Owner).await;
    let alice = opsdeck::auth::Actor::system("system:test");
    let job = opsdeck::ops::actions::run(&s.ctx, &alice, "rfc-app", "chatter")
        .await
        .unwrap();
    browser.goto(&s.at(&format!("/jobs/{job}"))).await;
    browser
        .until("return document.querySelector('#output').innerText.includes('line 150')")
        .await;
    let clock = browser
        .until("var e = document.querySelector('.elapsed[data-since]'); return e && e.innerText")
        .await;
    // Following: the box shows its end, the state badge is on screen.
    let seen = browser
        .js(
            "var o = document.querySelector('#output'); \
             var state = document.querySelector('#job-state').getBoundingClientRect(); \
             return [o.scrollHeight - o.scrollTop - o.clientHeight, o.scrollHeight > o.clientHeight, \
                     state.top >= 0 && state.bottom <= innerHeight]",
            json!([]),
        )
        .await;
    assert!(seen[0].as_f64().unwrap() < 24.0, "{seen}");
    assert_eq!(seen[1], true, "the output scrolls in its own box: {seen}");
    assert_eq!(seen[2], true, "the state is on screen: {seen}");

    // Scrolling up pauses; new lines do not move the reader.
    browser
        .js(
            "var o = document.querySelector('#output'); o.scrollTop = 0; \
             o.dispatchEvent(new Event('scroll')); return true",
            json!([]),
        )
        .await;
    let paused = browser
        .js(
            "return document.querySelector('#output-follow').checked",
            json!([]),
        )
        .await;
    assert_eq!(paused, false);
    browser
        .until("return document.querySelector('#output').innerText.includes('line 400')")
        .await;
    let top = browser
        .js(
            "return document.querySelector('#output').scrollTop",
            json!([]),
        )
        .await;
    assert_eq!(top, 0);
    let later = browser
        .until(&format!(
            "var e = document.querySelector('.elapsed'); return e && e.innerText !== {clock} && e.innerText"
        ))
        .await;
    assert!(later.as_str().unwrap().ends_with('s'), "{later}");
}

/// Parameter fields on a phone, without JavaScript: the app page with a
/// command deploy's and a command sweep's fields needs no sideways
/// scrolling, and Run now asks on a page that sends the typed value on to
/// the sweep after "Yes".
#[tokio::test]
async fn parameter_fields_fit_a_phone_and_pass_the_confirmation_page() {
    let Some(browser) = Browser::without_javascript().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (dump, argv) = support::argv_recorder(dir.path());
    let s = start(&format!(
        r#"[[app]]
name = "community"
environment = "staging"
strategy = "command"
deploy = [ {{ run = ["true", "{{tag}}", "{{note}}"] }} ]

[[app.deploy_param]]
name = "note"
label = "Why this deploy"
pattern = "[a-z ]+"
default = "routine"

[[app.sweep]]
name = "pin"
kind = "command"
run = ["python3", "{}", "{{branch}}", "{{note}}"]

[[app.sweep.param]]
name = "branch"
label = "Branch to keep"
kind = "choice"
choices = ["main", "staging"]
required = true

[[app.sweep.param]]
name = "note"
label = "Why"
pattern = "[a-z ]+"
"#,
        dump.display()
    ))
    .await;
    sign_in(&browser, &s, Role::Owner).await;
    browser.resize(390, 844).await;
    browser.goto(&s.at("/apps/community")).await;
    let overflow = browser
        .js(
            "return document.documentElement.scrollWidth - window.innerWidth",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the app page scrolls sideways by {overflow}px"
    );
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    browser.screenshot(&shots.join("params-phone.png")).await;
    browser
        .js(
            "document.querySelector('table.sweeps').scrollIntoView(); return true",
            json!([]),
        )
        .await;
    browser
        .screenshot(&shots.join("params-sweep-phone.png"))
        .await;
    let table = browser
        .js(
            "var w = document.querySelector('table.sweeps').parentElement; \
             return w.scrollWidth - w.clientWidth",
            json!([]),
        )
        .await;
    assert!(
        table.as_i64().unwrap() <= 0,
        "the sweeps table scrolls sideways by {table}px"
    );
    browser.resize(1280, 900).await;
    browser
        .screenshot(&shots.join("params-sweep-desktop.png"))
        .await;

    browser
        .type_into("#sweep-pin-param-note", "kept for a demo")
        .await;
    browser
        .click("form[action='/apps/community/sweeps/pin/run'] button")
        .await;
    arrives_at(&browser, &s.at("/apps/community/sweeps/pin/run")).await;
    let asked = browser.text().await;
    assert!(
        asked.contains("Run sweep pin on community (staging) now?"),
        "{asked}"
    );
    assert_eq!(s.job_count().await, 0, "asked, not run");
    browser.click("#confirm-yes").await;
    arrives_at(&browser, &s.at("/jobs/1")).await;
    assert_eq!(s.finished(1).await, opsdeck::jobs::State::Succeeded);
    assert_eq!(
        support::recorded_argvs(&argv),
        [["main", "kept for a demo"]]
    );
}

/// A `sqlite-backup` sweep's backups on the app page, each with a Restore
/// button that asks first: a dialog with JavaScript (no, and nothing
/// runs; yes, and the job page follows), the server's confirmation page
/// without it. The table fits a phone.
#[tokio::test]
async fn restore_asks_first_with_and_without_javascript() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(plain) = Browser::without_javascript().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let made = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('first');")
        .status()
        .expect("sqlite3 (Debian package sqlite3) is needed for this test");
    assert!(made.success());
    let s = start(&format!(
        r#"[[app]]
name = "notes"
environment = "production"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "{}"
dir = "{}"
keep = 5
"#,
        db.display(),
        dir.path().join("backups").display()
    ))
    .await;
    let system = opsdeck::auth::Actor::system("system:test");
    let job = opsdeck::ops::sweeps::request(&s.ctx, &system, "notes", "db-backup", false)
        .await
        .unwrap();
    assert_eq!(s.finished(job).await, opsdeck::jobs::State::Succeeded);
    let button = "form[action='/apps/notes/sweeps/db-backup/restore'] button";

    sign_in(&browser, &s, Role::Owner).await;
    browser.goto(&s.at("/apps/notes")).await;
    browser.click(button).await;
    let asked = browser.dialog().await;
    assert!(
        asked.starts_with("Restore the database of notes (production) from backup notes-"),
        "{asked}"
    );
    browser.dismiss_dialog().await;
    assert_eq!(s.job_count().await, 1, "no, and nothing ran");
    browser.click(button).await;
    browser.dialog().await;
    browser.accept_dialog().await;
    browser
        .until("return location.pathname === '/jobs/2'")
        .await;
    assert_eq!(s.finished(2).await, opsdeck::jobs::State::Succeeded);

    browser.resize(390, 844).await;
    browser.goto(&s.at("/apps/notes")).await;
    browser
        .until("return document.body.innerText.includes('Backups of db-backup')")
        .await;
    let overflow = browser
        .js(
            "return document.documentElement.scrollWidth - window.innerWidth",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "scrolls sideways by {overflow}px"
    );
    // For a person to look at: target/tmp/backups-phone.png.
    browser
        .js(
            "document.querySelector('#backups-db-backup').scrollIntoView(); return true",
            json!([]),
        )
        .await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    browser.screenshot(&shots.join("backups-phone.png")).await;

    sign_in(&plain, &s, Role::Owner).await;
    plain.goto(&s.at("/apps/notes")).await;
    plain.click(button).await;
    arrives_at(&plain, &s.at("/apps/notes/sweeps/db-backup/restore")).await;
    let asked = plain.text().await;
    assert!(
        asked.contains("Restore the database of notes (production) from backup notes-")
            && asked.contains("Nothing has run yet."),
        "{asked}"
    );
    assert_eq!(s.job_count().await, 2, "asked, not run");
    plain.click("#confirm-yes").await;
    arrives_at(&plain, &s.at("/jobs/3")).await;
    assert_eq!(s.finished(3).await, opsdeck::jobs::State::Succeeded);
}
