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
"#;

#[tokio::test]
async fn an_operator_runs_an_action_from_the_dashboard_and_sees_its_output() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = start(APPS).await;
    let (cookie, _) = s.session("ben", Role::Operator).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&s.at("/healthz")).await;
    browser.set_cookie(name, value).await;

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
             return t.includes('second line') && t.includes('succeeded') && t",
        )
        .await;
    assert!(
        output.as_str().unwrap().contains("hello from rfc-app"),
        "{output}"
    );

    // Times are rendered in UTC by the server and shown in local time.
    browser.goto(&s.at("/apps/rfc-app")).await;
    let time = browser
        .until("var t = document.querySelector('time[data-local]'); return t && t.title")
        .await;
    assert!(time.as_str().unwrap().ends_with('Z'), "{time}");

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
        let overflow = browser
            .js(
                "return document.documentElement.scrollWidth - window.innerWidth",
                json!([]),
            )
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path} scrolls sideways by {overflow}px"
        );
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
