//! The README's first command, `opsdeck demo`, clicked through in a real
//! Chromium as a new user would: sign in with the dev login as the owner,
//! What ships, Deploy (finishes healthy), Roll back, Logs (a line the demo
//! service wrote seconds ago). Then every page at a phone's and a laptop's
//! width: nothing scrolls sideways, and a screenshot of each lands in the
//! folder this test prints (`target/screenshots/`).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use support::browser::Browser;

/// The README's address, as written.
const URL: &str = "http://127.0.0.1:8080";

/// `opsdeck demo` in a temp dir of the test's own; ends it on drop (the
/// demo service ends with it).
struct Demo {
    _server: support::cli::Server,
    dir: tempfile::TempDir,
}

impl Demo {
    async fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let server = support::cli::Server {
            child: std::process::Command::new(support::cli::BIN)
                .args(["demo", "--dir"])
                .arg(dir.path().join("opsdeck-demo"))
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap())
                .spawn()
                .unwrap(),
            url: URL.into(),
        };
        let demo = Demo {
            _server: server,
            dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if http.get(format!("{URL}/healthz")).send().await.is_ok() {
                return demo;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the demo did not answer on {URL}: {}", demo.log());
    }

    /// What the demo printed (the walkthrough, then its log).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("demo.log")).unwrap_or_default()
    }
}

fn at(path: &str) -> String {
    format!("{URL}{path}")
}

/// The text of `css`, once it satisfies `test` (a JS expression on `t`).
async fn text_when(browser: &Browser, css: &str, test: &str) -> String {
    let script = format!(
        "var e = document.querySelector({css:?}); var t = e && e.innerText; return !!t && ({test}) && t"
    );
    browser.until(&script).await.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_deploys_rolls_back_and_reads_logs_in_the_demo_then_every_page_fits() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let demo = Demo::start().await;
    let welcome = demo.log();
    // The walkthrough names what a user meets, in order.
    let order = [
        "Sign in",
        "What ships?",
        "Deploy",
        "Roll back",
        "Logs",
        "rotate SECRET_KEY",
        "Sweeps",
        "Audit",
    ];
    let places: Vec<usize> = order
        .iter()
        .map(|w| welcome.find(w).unwrap_or_else(|| panic!("{w}: {welcome}")))
        .collect();
    assert!(places.is_sorted(), "{order:?} out of order: {welcome}");

    let shots = screenshots();
    fits(
        &browser,
        &shots,
        &[("/auth/login", "sign-in", "Dev sign-in")],
    )
    .await;

    // The dev login, as the owner.
    browser.resize(1366, 900).await;
    browser.goto(&at("/auth/login")).await;
    browser
        .js(
            "document.querySelector('#dev-login').value = 'ada'; \
             document.querySelector('#dev-role').value = 'owner'; return true",
            json!([]),
        )
        .await;
    browser.click("#sign-in-dev").await;
    browser
        .until("return location.pathname === '/' && document.body.innerText.includes('Sign out')")
        .await;
    // The demo's first start deployed what runs (system:demo): wait for it,
    // so there is a release to roll back to.
    let mut releases = String::new();
    for _ in 0..120 {
        browser.goto(&at("/apps/demo-app")).await;
        releases = text_when(&browser, "#deploy", "true").await;
        if releases.contains("Live:") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(releases.contains("deploy by system:demo"), "{releases}");

    // A typo in the ref: the problem shows where the answer would, and no
    // Deploy button is left to press.
    browser.goto(&at("/apps/demo-app")).await;
    browser
        .js(
            "document.querySelector('#deploy-ref').value = 'mian'; return true",
            json!([]),
        )
        .await;
    browser.click("form.deploy-form button").await;
    let problem = text_when(&browser, "#what-ships .problem", "true").await;
    assert!(
        problem.contains("\"mian\" is not a branch, tag or commit"),
        "{problem}"
    );
    let deploy_button = browser
        .js(
            "return !!document.querySelector('#what-ships form')",
            json!([]),
        )
        .await;
    assert_eq!(deploy_button, false);

    // What ships: the commit waiting upstream, with its author.
    browser
        .js(
            "document.querySelector('#deploy-ref').value = 'main'; return true",
            json!([]),
        )
        .await;
    browser.click("form.deploy-form button").await;
    let preview = text_when(
        &browser,
        "#what-ships",
        "!!document.querySelector('#what-ships form')",
    )
    .await;
    assert!(preview.contains("Ships 1 commit:"), "{preview}");
    assert!(
        preview.contains("Say what is new on the home page — Ada Lovelace"),
        "{preview}"
    );

    // Deploy (staging: a confirmation dialog), watched to a healthy end.
    browser.click("#what-ships form button").await;
    let asked = browser.dialog().await;
    assert!(
        asked.starts_with("Deploy ") && asked.contains("demo-app (staging)?"),
        "{asked}"
    );
    browser.accept_dialog().await;
    browser
        .until("return location.pathname.startsWith('/jobs/')")
        .await;
    let output = browser
        .until("var s = document.querySelector('#job-state').innerText; return !['queued', 'running'].includes(s.trim()) && document.body.innerText")
        .await;
    let output = output.as_str().unwrap();
    let state = browser
        .js(
            "return document.querySelector('#job-state').innerText.trim()",
            json!([]),
        )
        .await;
    assert_eq!(state, "succeeded", "{output}");
    assert!(output.contains("build done: "), "{output}");
    assert!(
        output.contains("demo-app restarted: ok: demo-app"),
        "{output}"
    );
    assert!(output.contains("Health check"), "{output}");
    let shipped = output
        .split("build done: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(
        service_says()
            .await
            .contains(&format!("demo-app {shipped}")),
        "the service runs what was deployed"
    );

    // Healthy, then Roll back to the release before.
    browser.goto(&at("/apps/demo-app")).await;
    browser
        .until("return !!document.querySelector('.badge.verdict-healthy')")
        .await;
    browser
        .click("form[action='/apps/demo-app/rollback'] button")
        .await;
    let asked = browser.dialog().await;
    assert!(asked.contains("back to release 1"), "{asked}");
    browser.accept_dialog().await;
    browser
        .until("return location.pathname.startsWith('/jobs/')")
        .await;
    let rolled = browser
        .until("var s = document.querySelector('#job-state').innerText.trim(); return !['queued', 'running'].includes(s) && s")
        .await;
    assert_eq!(rolled, "succeeded", "{}", browser.text().await);
    let now = service_says().await;
    assert!(!now.contains(&shipped), "rolled back from {shipped}: {now}");

    // Logs: the demo service's file, and a line it writes after the page
    // opened arrives live.
    let opened = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    browser.goto(&at("/apps/demo-app")).await;
    browser.click("a[href='/apps/demo-app/logs']").await;
    let line = browser
        .until(&format!(
            "var t = document.querySelector('#log-lines').innerText; \
             var m = [...t.matchAll(/(\\d{{4}}-[\\d-]+T[\\d:]+Z) INFO heartbeat[^\\n]*/g)].filter(m => m[1] >= {opened:?}); \
             return m.length > 0 && m[0][0]"
        ))
        .await;
    assert!(line.as_str().unwrap().contains("requests served"), "{line}");

    fits(&browser, &shots, &PAGES).await;
    // Nothing failed but what was asked for on purpose: the 404 page and
    // the misspelt ref.
    let console = browser.console().await;
    assert!(
        console.iter().all(|l| !l.contains("SEVERE")
            || l.contains("/no-such-page")
            || l.contains("preview?ref=mian")
            || l.contains("Error Code 400 from /apps/demo-app/deploy/preview")),
        "console errors: {console:#?}"
    );
    drop(demo);
}

/// What the demo service answers on its home page.
async fn service_says() -> String {
    reqwest::get("http://127.0.0.1:8081/")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Every page a signed-in owner has, and what shows it is there.
const PAGES: [(&str, &str, &str); 9] = [
    ("/", "dashboard", "demo-app"),
    ("/apps/demo-app", "app", "Releases"),
    ("/apps/demo-app/jobs", "app-jobs", "rollback"),
    ("/jobs/2", "job-deploy", "succeeded"),
    ("/apps/demo-app/logs", "logs", "heartbeat"),
    ("/audit", "audit", "job.request"),
    ("/hosts", "hosts", "this machine"),
    ("/sessions", "sessions", "ada"),
    ("/no-such-page", "not-found", "not"),
];

/// Where the screenshots go (printed, for a person to look at them).
fn screenshots() -> PathBuf {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    println!("screenshots: {}", shots.display());
    shots
}

/// Each of `pages` at 390×844 and 1366×900: nothing scrolls sideways, and
/// a screenshot of each, `<name>-phone.png` and `<name>-laptop.png`.
async fn fits(browser: &Browser, shots: &std::path::Path, pages: &[(&str, &str, &str)]) {
    for (width, height, size) in [(390, 844, "phone"), (1366, 900, "laptop")] {
        browser.resize(width, height).await;
        for (path, name, shown) in pages {
            browser.goto(&at(path)).await;
            browser
                .until(&format!(
                    "return document.body.innerText.includes({shown:?})"
                ))
                .await;
            // Let lazy fragments (health, live output) settle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let scroll = browser
                .js("return document.documentElement.scrollWidth", json!([]))
                .await;
            let inner = browser.js("return window.innerWidth", json!([])).await;
            assert!(
                scroll.as_i64() <= inner.as_i64(),
                "{path} at {width} px scrolls sideways: scrollWidth {scroll} > innerWidth {inner}"
            );
            if *path == "/apps/demo-app" {
                every_risky_button_asks(browser, width).await;
            }
            // The whole page, not only the window: as tall as its content.
            let tall = browser
                .js("return document.documentElement.scrollHeight", json!([]))
                .await;
            let tall = tall
                .as_u64()
                .unwrap_or(u64::from(height))
                .clamp(u64::from(height), 8000);
            browser.resize(width, tall as u32).await;
            browser
                .js("window.scrollTo(0, 0); return true", json!([]))
                .await;
            browser
                .screenshot(&shots.join(format!("{name}-{size}.png")))
                .await;
            browser.resize(width, height).await;
        }
    }
}

/// Each risky button of the app page asks its question before anything is
/// sent; saying no stays on the page.
async fn every_risky_button_asks(browser: &Browser, width: u32) {
    let questions = browser
        .js(
            "var asks = document.querySelectorAll('form input[name=ask]'); \
             asks.forEach((a, i) => a.form.setAttribute('data-risky', i)); \
             return [...asks].map(a => a.value)",
            json!([]),
        )
        .await;
    let questions = questions.as_array().unwrap().clone();

    // Three actions, Rotate, two sweeps' Run now (no Roll back: the one
    // release to go back to was just rolled away from).
    assert!(questions.len() >= 6, "{questions:?}");
    for (i, question) in questions.iter().enumerate() {
        browser
            .click(&format!("form[data-risky='{i}'] button[type=submit]"))
            .await;
        assert_eq!(&json!(browser.dialog().await), question, "at {width} px");
        browser.dismiss_dialog().await;
        assert_eq!(
            browser.url().await,
            at("/apps/demo-app"),
            "{question} was sent"
        );
    }
}
