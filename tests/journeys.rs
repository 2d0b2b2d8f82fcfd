//! The three journeys of opsdeck's users in a real Chromium, against
//! opsdeck inside the systemd sandbox (real units, real journald) signing
//! in through the real OpenID provider configured like Gitea:
//!
//! - the owner signs in, sees what ships, deploys, watches the output, sees
//!   the service healthy and rolls back;
//! - the on-call engineer opens Logs, sees a line written seconds ago and
//!   filters by priority;
//! - the admin filters the audit log and exports it;
//! - an operator is not offered the Deploy button.
//!
//! A screenshot of each step lands in `target/tmp/journey-*.png`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use support::browser::Browser;
use support::chatty::{self, say};
use support::oidc::{self, CLIENT_SECRET, Provider, gitea_config};
use support::sandbox::{self, Sandbox};
use support::server::{self, Server};
use support::webapp::{answer, answer_when_up, checkout_setup, repository};

#[test]
fn owner_on_call_admin_and_operator_journeys_in_a_real_browser() {
    if !oidc::available() {
        return;
    }
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_journeys");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "runs inside the systemd sandbox; started by the test above"]
async fn inside_journeys() {
    assert!(sandbox::inside().is_some());
    chatty::start();
    let (repos, _v1) = repository();
    let web_port = support::free_port();
    let oidc_port = support::free_port();
    let secret_dir = tempfile::tempdir().unwrap();
    let server = server::start(&format!(
        "{}\n{}\n[[app]]\nname = \"chatty\"\nunits = [\"chatty.service\"]\n",
        gitea_config(
            secret_dir.path(),
            &format!("http://127.0.0.1:{oidc_port}/"),
            CLIENT_SECRET
        ),
        checkout_setup(&repos, web_port),
    ))
    .await;
    let _provider = Provider::start(oidc_port, &format!("{}/auth/callback", server.url));
    assert_eq!(answer_when_up(web_port).await, "v1");
    // What runs now, deployed once by a script through the API, so the
    // owner has a release to roll back to.
    let token = server.token("ci", opsdeck::auth::Role::Owner).await;
    let res = server::client()
        .post(server.at("/api/apps/web/deploy"))
        .bearer_auth(&token)
        .json(&json!({"ref": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job = server::json(res).await["job"].as_i64().unwrap();
    server.finished(job).await;
    let v2 = repos.push_files(&[("VERSION", Some("v2"))], "Say v2 on the home page");

    let shots = Shots::new();
    let ann = signed_in(&server, "ann", &shots).await;
    owner_deploys_and_rolls_back(&ann, &server, &shots, &v2, web_port).await;
    admin_filters_and_exports_the_audit_log(&ann, &server, &shots).await;
    no_console_errors(&ann, &server).await;
    drop(ann);

    let olly = signed_in(&server, "olly", &shots).await;
    on_call_follows_logs_and_filters_by_priority(&olly, &server, &shots).await;
    operator_is_not_offered_deploy(&olly, &server, &shots).await;
    no_console_errors(&olly, &server).await;
}

/// Where the screenshots go, numbered in the order taken.
struct Shots {
    dir: PathBuf,
    n: std::sync::atomic::AtomicUsize,
}

impl Shots {
    fn new() -> Shots {
        Shots {
            dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            n: Default::default(),
        }
    }

    async fn take(&self, browser: &Browser, name: &str) {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.join(format!("journey-{n:02}-{name}.png"));
        browser.screenshot(&path).await;
    }
}

/// A fresh browser signed in as `login` through the provider's page.
async fn signed_in(server: &Server, login: &str, shots: &Shots) -> Browser {
    let browser = Browser::start().await.expect("Chromium (CI=true)");
    browser.goto(&server.at("/auth/login")).await;
    // Discovery runs in the background; the button appears once it worked.
    loop {
        let ready = browser
            .js(
                "return !!document.querySelector('#sign-in-gitea')",
                json!([]),
            )
            .await;
        if ready == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.goto(&server.at("/auth/login")).await;
    }
    shots.take(&browser, &format!("{login}-sign-in")).await;
    browser.click("#sign-in-gitea").await;
    browser
        .until("return !!document.querySelector('#user_name')")
        .await;
    browser.type_into("#user_name", login).await;
    browser.click("#sign-in").await;
    browser
        .until("return location.pathname === '/' && document.body.innerText.includes('Sign out')")
        .await;
    let text = browser.text().await;
    assert!(text.contains(login), "{text}");
    shots.take(&browser, &format!("{login}-dashboard")).await;
    browser
}

async fn owner_deploys_and_rolls_back(
    browser: &Browser,
    server: &Server,
    shots: &Shots,
    v2: &str,
    port: u16,
) {
    browser.goto(&server.at("/apps/web")).await;
    browser.click("form.deploy-form button").await;
    // What ships: the new commit, with its author.
    let preview = browser
        .until("var w = document.querySelector('#what-ships form'); return w && document.querySelector('#what-ships').innerText")
        .await;
    let preview = preview.as_str().unwrap();
    assert!(preview.contains("Say v2 on the home page"), "{preview}");
    assert!(preview.contains(&v2[..7]), "{preview}");
    shots.take(browser, "owner-what-ships").await;

    // web is production: the button wants the app's name typed first.
    browser.click("#what-ships form button").await;
    let refused = browser
        .js(
            "return document.querySelector('#deploy-confirm').validity.valueMissing",
            json!([]),
        )
        .await;
    assert_eq!(refused, json!(true), "the form was sent without the name");
    browser.type_into("#deploy-confirm", "web").await;
    browser.click("#what-ships form button").await;
    browser
        .until("return location.pathname.startsWith('/jobs/')")
        .await;
    // The output streams in as the job runs, then the verdict (the job's
    // own state: its steps say "succeeded" one by one before it ends).
    let output = browser
        .until("return document.querySelector('#job-state').innerText.trim() === 'succeeded' && document.body.innerText")
        .await;
    let output = output.as_str().unwrap();
    assert!(output.contains("build.sh"), "{output}");
    shots.take(browser, "owner-deployed").await;
    assert_eq!(answer(port).await, "v2");

    // Healthy at a glance, v2 live, v1 offered to roll back to.
    browser.goto(&server.at("/apps/web")).await;
    browser
        .until("return !!document.querySelector('.badge.verdict-healthy')")
        .await;
    let page = browser.text().await;
    assert!(page.contains(&v2[..7]), "{page}");
    shots.take(browser, "owner-healthy").await;

    browser
        .click("form[action='/apps/web/rollback'] button")
        .await;
    let asked = browser.dialog().await;
    assert!(asked.contains("back to release"), "{asked}");
    browser.accept_dialog().await;
    browser
        .until("return location.pathname.startsWith('/jobs/') && document.querySelector('#job-state').innerText.trim() === 'succeeded'")
        .await;
    shots.take(browser, "owner-rolled-back").await;
    assert_eq!(answer(port).await, "v1");
}

async fn admin_filters_and_exports_the_audit_log(
    browser: &Browser,
    server: &Server,
    shots: &Shots,
) {
    browser.goto(&server.at("/audit")).await;
    browser.type_into("input[name=actor]", "ann").await;
    browser.click("form.audit-filter button[type=submit]").await;
    browser
        .until("return location.search.includes('actor=ann')")
        .await;
    let table = browser.text().await;
    assert!(
        table.contains("deploy") && table.contains("rollback"),
        "{table}"
    );
    assert!(!table.contains("token:ci"), "filtered to ann: {table}");
    shots.take(browser, "admin-audit-filtered").await;

    // The export link carries the filter; fetched as the browser would.
    let csv = browser
        .until(
            "if (!window.exported) { window.exported = 'pending'; \
             fetch(document.querySelector('a[href*=\"format=csv\"]').href).then(r => r.text()).then(t => window.exported = t); } \
             return window.exported !== 'pending' && window.exported",
        )
        .await;
    let csv = csv.as_str().unwrap();
    assert!(csv.lines().count() > 2, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains("ann")), "{csv}");
}

async fn on_call_follows_logs_and_filters_by_priority(
    browser: &Browser,
    server: &Server,
    shots: &Shots,
) {
    browser.goto(&server.at("/apps/chatty/logs")).await;
    browser
        .until("return document.querySelector('#log-status').innerText.includes('live')")
        .await;
    say(1, 6, "a request was served");
    browser
        .until("return document.querySelector('#log-lines').innerText.includes('a request was served 0')")
        .await;
    shots.take(browser, "on-call-live-line").await;

    browser
        .js(
            "document.querySelector('select[name=priority]').value = '3'; return true",
            json!([]),
        )
        .await;
    browser.click("#log-filter button[type=submit]").await;
    browser
        .until("return document.querySelector('#log-status').innerText.includes('live')")
        .await;
    say(1, 6, "routine");
    say(1, 3, "disk full");
    let shown = browser
        .until("var t = document.querySelector('#log-lines').innerText; return t.includes('disk full 0') && t")
        .await;
    assert!(!shown.as_str().unwrap().contains("routine"), "{shown}");
    // The command to copy follows the filters (the server writes it).
    let command = browser
        .until("var t = document.querySelector('#log-command').innerText; return t.includes('--priority=3') && t")
        .await;
    assert_eq!(
        command,
        json!("journalctl --unit=chatty.service --priority=3 --follow")
    );
    shots.take(browser, "on-call-errors-only").await;
}

async fn operator_is_not_offered_deploy(browser: &Browser, server: &Server, shots: &Shots) {
    browser.goto(&server.at("/apps/web")).await;
    let page = browser.text().await;
    assert!(
        page.contains("Deploying web needs a higher role than yours"),
        "{page}"
    );
    let form = browser
        .js(
            "return !!document.querySelector('form.deploy-form')",
            json!([]),
        )
        .await;
    assert_eq!(form, json!(false));
    shots.take(browser, "operator-no-deploy").await;
}

/// Nothing of opsdeck's was refused by the CSP or failed to load (the
/// provider's sign-in page, standing in for Gitea's, has no favicon).
async fn no_console_errors(browser: &Browser, server: &Server) {
    let console = browser.console().await;
    let ours: Vec<_> = console
        .iter()
        .filter(|l| l.contains("SEVERE") && (l.contains(&server.url) || !l.contains("http")))
        .collect();
    assert!(ours.is_empty(), "console errors: {console:#?}");
}
