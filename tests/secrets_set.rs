//! Secrets issued elsewhere (`generate = "set"`, issue 23) and secrets in
//! env files of their own: a real opsdeck (in process, and as the real
//! binary restarted under a queued job), real env files, the API, the Set
//! page without JavaScript (a session cookie and its CSRF token), and the
//! masking of every env file of the app in every job's output.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use opsdeck::auth::Role;
use opsdeck::host::envfile;
use opsdeck::jobs::State;
use support::browser::Browser;
use support::cli::Instance;
use support::server::{self, Server};

const ENV: &str = "# rfc-app\nGITEA_URL=https://git.example.org\nGITEA_BOT_TOKEN=old-bot-token-0001\nSECRET_KEY=old-secret-key-0002\nPORT=8000\n";
/// The env file of one bot (SITG: one per bot worker).
const BOT: &str = "WORKER_ID=alice\nGITHUB_WEBHOOK_SECRET=alice-webhook-secret-0003\n";
/// Another bot's, whose values only masking protects.
const OTHER_BOT: &str = "WORKER_ID=bob\nBACKEND_INTERNAL_HMAC_SECRET=bob-hmac-secret-0004\nGITHUB_WEBHOOK_SECRET=bob-webhook-secret-0005\n";

struct Fixture {
    server: Server,
    env: PathBuf,
    bot: PathBuf,
    other_bot: PathBuf,
    owner: String,
    _dir: tempfile::TempDir,
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    let bot = dir.path().join("bot-alice.env");
    let other_bot = dir.path().join("bot-bob.env");
    private(&env, ENV);
    private(&bot, BOT);
    private(&other_bot, OTHER_BOT);
    let server = server::start(&format!(
        r#"[[app]]
name = "web"
env_file = "{env}"

[[app.secret]]
name = "GITEA_BOT_TOKEN"
generate = "set"
note = "Make a new token in Gitea first."

[[app.secret]]
name = "SECRET_KEY"
generate = "hex:32"

[[app.secret]]
name = "ALICE_WEBHOOK_SECRET"
env_file = "{bot}"
key = "GITHUB_WEBHOOK_SECRET"
generate = "hex:32"

[[app.secret]]
name = "BOB_HMAC_SECRET"
env_file = "{other_bot}"
key = "BACKEND_INTERNAL_HMAC_SECRET"
generate = "set"
role = "admin"

[[app.action]]
name = "show-bob"
run = ["cat", "{other_bot}"]

[[app.action]]
name = "show-env"
run = ["cat", "{env}"]
"#,
        env = env.display(),
        bot = bot.display(),
        other_bot = other_bot.display(),
    ))
    .await;
    let owner = server.token("ops", Role::Owner).await;
    Fixture {
        server,
        env,
        bot,
        other_bot,
        owner,
        _dir: dir,
    }
}

impl Fixture {
    async fn set(&self, name: &str, value: &str, token: &str) -> reqwest::Response {
        server::client()
            .post(self.server.at(&format!("/api/apps/web/secrets/{name}/set")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "value": value }))
            .send()
            .await
            .unwrap()
    }

    /// Sets as the owner; the job and how it ended.
    async fn set_ok(&self, name: &str, value: &str) -> (i64, State) {
        let res = self.set(name, value, &self.owner).await;
        assert_eq!(res.status(), 202);
        let job = server::json(res).await["job"].as_i64().unwrap();
        (job, self.server.finished(job).await)
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        server::client()
            .post(self.server.at(path))
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap()
    }

    async fn output(&self, job: i64) -> String {
        self.server
            .get_as(&format!("/api/jobs/{job}/output"), &self.owner)
            .await
            .text()
            .await
            .unwrap()
    }

    async fn page(&self, path: &str) -> String {
        self.server
            .get_as(path, &self.owner)
            .await
            .text()
            .await
            .unwrap()
    }

    async fn denied(&self, action: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT detail FROM audit_events WHERE action = ? AND outcome = 'denied' ORDER BY id",
        )
        .bind(action)
        .fetch_all(&self.server.ctx.db)
        .await
        .unwrap()
    }

    /// Every row and plan the database holds, as text.
    async fn database_text(&self) -> String {
        let mut all: Vec<String> = Vec::new();
        for query in [
            "SELECT plan FROM jobs",
            "SELECT detail FROM audit_events",
            "SELECT command FROM job_steps",
            "SELECT coalesce(summary, '') FROM jobs",
        ] {
            let rows: Vec<String> = sqlx::query_scalar(query)
                .fetch_all(&self.server.ctx.db)
                .await
                .unwrap();
            all.extend(rows);
        }
        all.join("\n")
    }
}

fn value(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    envfile::get(path, &text, key).unwrap().unwrap()
}

#[tokio::test]
async fn a_set_value_is_written_like_a_rotation_and_shown_nowhere() {
    let f = fixture().await;
    let token = "gitea-bot-token-Zq81xxLw0";
    let (job, state) = f.set_ok("GITEA_BOT_TOKEN", token).await;
    assert_eq!(state, State::Succeeded, "{}", f.output(job).await);
    assert_eq!(value(&f.env, "GITEA_BOT_TOKEN"), token);
    assert_eq!(
        std::fs::read_to_string(&f.env).unwrap(),
        ENV.replace("old-bot-token-0001", token),
        "one line changed"
    );
    let backups = envfile::backups(&f.env).unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), ENV);

    // The output and the audit say it by fingerprint; the plan, the step
    // lines and the audit never hold the value.
    let fingerprint = f.server.ctx.server_key.fingerprint(token);
    let output = f.output(job).await;
    assert!(output.contains(&fingerprint), "{output}");
    assert!(
        output.contains("to the value entered for this job (held in memory only"),
        "{output}"
    );
    let stored = f.database_text().await;
    assert!(stored.contains(&fingerprint));
    for page in ["/apps/web", &format!("/jobs/{job}"), "/audit", "/api/audit"] {
        let body = f.page(page).await;
        assert!(!body.contains(token), "{page} shows the value");
        assert!(!body.contains("old-bot-token-0001"), "{page}");
    }
    assert!(!output.contains(token) && !stored.contains(token));
    let app_page = f.page("/apps/web").await;
    assert!(app_page.contains(&fingerprint), "{app_page}");
    assert!(
        app_page.contains("/apps/web/secrets/GITEA_BOT_TOKEN/set"),
        "{app_page}"
    );

    // A value with quotes and spaces is written quoted and read back whole.
    let (job, state) = f.set_ok("GITEA_BOT_TOKEN", "p@ss w#rd'x").await;
    assert_eq!(state, State::Succeeded, "{}", f.output(job).await);
    assert_eq!(value(&f.env, "GITEA_BOT_TOKEN"), "p@ss w#rd'x");

    // Other jobs of the app mask it like every env value.
    let res = f.post("/api/apps/web/actions/show-env/run").await;
    let job = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(f.server.finished(job).await, State::Succeeded);
    let output = f.output(job).await;
    assert!(
        output.contains("GITEA_BOT_TOKEN=\"[redacted]\""),
        "{output}"
    );
}

#[tokio::test]
async fn bad_values_and_wrong_secrets_are_refused_audited_and_never_echoed() {
    let f = fixture().await;
    let before = std::fs::read(&f.env).unwrap();
    for (bad, why) in [
        ("first-half-9f2c\nsecond-half-77ad", "line break"),
        ("nul-part-a1b2\0nul-part-c3d4", "NUL"),
        ("", "empty"),
        (" padded-value-e5f6", "space"),
        ("tab-part-0a0b\ttab-part-0c0d", "control"),
    ] {
        let res = f.set("GITEA_BOT_TOKEN", bad, &f.owner).await;
        assert_eq!(res.status(), 400, "{bad:?}");
        let error = server::json(res).await["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains(why), "{error}");
        for part in bad.split(['\n', '\0', '\t', ' ']).filter(|p| p.len() > 3) {
            assert!(!error.contains(part), "{error}");
        }
    }
    let denied = f.denied("secret.set").await;
    assert_eq!(denied.len(), 5, "{denied:?}");
    for row in &denied {
        assert!(row.contains("GITEA_BOT_TOKEN"), "{row}");
        for part in [
            "first-half",
            "second-half",
            "nul-part",
            "padded-value",
            "tab-part",
        ] {
            assert!(!row.contains(part), "{row}");
        }
    }

    // Setting a generated secret, rotating a set one: refused, audited.
    let res = f.set("SECRET_KEY", "some-value-1234", &f.owner).await;
    assert_eq!(res.status(), 400);
    assert!(
        server::json(res).await["error"]
            .as_str()
            .unwrap()
            .contains("rotate it instead")
    );
    assert_eq!(f.denied("secret.set").await.len(), 6);
    let res = f.post("/api/apps/web/secrets/GITEA_BOT_TOKEN/rotate").await;
    assert_eq!(res.status(), 400);
    let error = server::json(res).await["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("POST /api/apps/web/secrets/GITEA_BOT_TOKEN/set"),
        "{error}"
    );
    assert_eq!(f.denied("rotate").await.len(), 1);

    // A role too low: 403, audited; an unknown secret: 404; a body that is
    // not just the value: 400.
    let operator = f.server.token("op", Role::Operator).await;
    assert_eq!(
        f.set("GITEA_BOT_TOKEN", "x-value-1234", &operator)
            .await
            .status(),
        403
    );
    let owner_only = f.set("BOB_HMAC_SECRET", "x-value-1234", &operator).await;
    assert_eq!(owner_only.status(), 403);
    assert_eq!(
        f.set("NO_SUCH", "x-value-1234", &f.owner).await.status(),
        404
    );
    let res = server::client()
        .post(f.server.at("/api/apps/web/secrets/GITEA_BOT_TOKEN/set"))
        .bearer_auth(&f.owner)
        .json(&serde_json::json!({"value": "x-value-1234", "echo": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    assert_eq!(f.server.job_count().await, 0, "refusals queue nothing");
    assert_eq!(std::fs::read(&f.env).unwrap(), before);
    assert!(envfile::backups(&f.env).unwrap().is_empty());
}

#[tokio::test]
async fn the_set_page_works_without_javascript_and_never_shows_the_value() {
    let f = fixture().await;
    let (cookie, csrf) = f.server.session("ada", Role::Owner).await;
    let app_page = f
        .server
        .browse("/apps/web", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        app_page.contains("href=\"/apps/web/secrets/GITEA_BOT_TOKEN/set\""),
        "{app_page}"
    );
    assert!(app_page.contains("GITHUB_WEBHOOK_SECRET in "), "{app_page}");

    let res = f
        .server
        .browse("/apps/web/secrets/GITEA_BOT_TOKEN/set", &cookie)
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let field = page
        .split("<input type=\"password\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("a password field");
    assert!(field.contains("name=\"value\""), "{field}");
    assert!(field.contains("autocomplete=\"new-password\""), "{field}");
    assert!(
        !field.contains("value="),
        "the field is never filled: {field}"
    );
    assert!(
        !page.contains("name=\"ask\""),
        "a confirmation page would echo the value"
    );
    assert!(page.contains("Make a new token in Gitea first."), "{page}");
    assert!(page.contains(&format!("GITEA_BOT_TOKEN in {}", f.env.display())));

    let token = "pasted-in-a-browser-Rt55p";
    let send = |value: &str| {
        server::client()
            .post(f.server.at("/apps/web/secrets/GITEA_BOT_TOKEN/set"))
            .header(reqwest::header::COOKIE, &cookie)
            .header("origin", &f.server.url)
            .form(&[("csrf", csrf.as_str()), ("value", value)])
            .send()
    };
    let res = send(token).await.unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let job: i64 = location.trim_start_matches("/jobs/").parse().unwrap();
    assert_eq!(f.server.finished(job).await, State::Succeeded);
    assert_eq!(value(&f.env, "GITEA_BOT_TOKEN"), token);
    for path in [location.as_str(), "/apps/web", "/audit"] {
        let body = f.server.browse(path, &cookie).await.text().await.unwrap();
        assert!(!body.contains(token), "{path} shows the value");
    }

    // A refused value: the error page does not repeat it either.
    let res = send("one-line-abc\nother-line-def").await.unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("line break"), "{body}");
    assert!(!body.contains("one-line-abc") && !body.contains("other-line-def"));

    // A generated secret has no Set page; a viewer sees it disabled.
    let res = f
        .server
        .browse("/apps/web/secrets/SECRET_KEY/set", &cookie)
        .await;
    assert_eq!(res.status(), 400);
    let (viewer, _) = f.server.session("vic", Role::Operator).await;
    let page = f
        .server
        .browse("/apps/web/secrets/BOB_HMAC_SECRET/set", &viewer)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("needs the admin role"), "{page}");
}

#[tokio::test]
async fn a_secret_in_its_own_env_file_rotates_that_file_and_every_env_file_is_masked() {
    let f = fixture().await;
    let res = f
        .post("/api/apps/web/secrets/ALICE_WEBHOOK_SECRET/rotate")
        .await;
    assert_eq!(res.status(), 202);
    let job = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(
        f.server.finished(job).await,
        State::Succeeded,
        "{}",
        f.output(job).await
    );
    let new = value(&f.bot, "GITHUB_WEBHOOK_SECRET");
    assert_eq!(new.len(), 64);
    assert_eq!(
        std::fs::read_to_string(&f.bot).unwrap(),
        BOT.replace("alice-webhook-secret-0003", &new)
    );
    assert_eq!(std::fs::read_to_string(&f.env).unwrap(), ENV, "untouched");
    assert_eq!(
        std::fs::read_to_string(&f.other_bot).unwrap(),
        OTHER_BOT,
        "untouched"
    );
    assert_eq!(envfile::backups(&f.bot).unwrap().len(), 1);
    assert!(envfile::backups(&f.env).unwrap().is_empty());
    let output = f.output(job).await;
    assert!(
        output.contains("GITHUB_WEBHOOK_SECRET changed from sha256:"),
        "{output}"
    );

    // Another bot's env file, not the app's, printed by an action: masked.
    let res = f.post("/api/apps/web/actions/show-bob/run").await;
    let job = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(f.server.finished(job).await, State::Succeeded);
    let output = f.output(job).await;
    assert!(
        output.contains("BACKEND_INTERNAL_HMAC_SECRET=[redacted]"),
        "{output}"
    );
    assert!(
        output.contains("GITHUB_WEBHOOK_SECRET=[redacted]"),
        "{output}"
    );
    assert!(!output.contains("bob-hmac-secret-0004") && !output.contains("bob-webhook"));
    assert!(output.contains("WORKER_ID=bob"), "short plain values stay");
}

#[tokio::test]
async fn a_set_job_queued_when_opsdeck_restarts_is_interrupted_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    private(&env, ENV);
    let instance = Instance::new(&format!(
        r#"[[app]]
name = "web"
env_file = "{}"

[[app.secret]]
name = "GITEA_BOT_TOKEN"
generate = "set"

[[app.action]]
name = "hold"
run = ["sleep", "60"]
"#,
        env.display()
    ));
    let token = instance.token("ops", "owner");
    let server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Option<serde_json::Value>| {
        let mut req = client
            .post(format!("{}{path}", server.url))
            .bearer_auth(&token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let res = post("/api/apps/web/actions/hold/run", None).await.unwrap();
    assert_eq!(res.status(), 202);
    let res = post(
        "/api/apps/web/secrets/GITEA_BOT_TOKEN/set",
        Some(serde_json::json!({"value": "never-written-Kk21"})),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 202);
    let job = res.json::<serde_json::Value>().await.unwrap()["job"]
        .as_i64()
        .unwrap();
    let url = server.url.clone();
    assert_eq!(
        support::cli::job(&url, &token, job).await["state"],
        "queued"
    );
    drop(server); // SIGKILL: the value it held is gone

    let _server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
    assert_eq!(
        support::cli::job_end(&url, &token, job).await,
        "interrupted"
    );
    let summary = support::cli::job(&url, &token, job).await["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(summary.contains("enter the value again"), "{summary}");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        ENV,
        "nothing written"
    );
    assert!(envfile::backups(&env).unwrap().is_empty());
}

/// Signs `browser` in as `login` with `role` (the session's cookie, set on
/// the server's site).
async fn sign_in(browser: &Browser, s: &Server, login: &str, role: Role) {
    let (cookie, _) = s.session(login, role).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&s.at("/healthz")).await;
    browser.set_cookie(name, value).await;
}

/// Waits until the browser is at a URL whose path starts with `path`.
async fn arrives_at(browser: &Browser, path: &str) -> String {
    for _ in 0..200 {
        let url = browser.url().await;
        if url.contains(path) {
            return url;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("never reached {path}; at {}", browser.url().await);
}

/// In a real Chromium, on a phone-sized screen, with JavaScript and
/// without: Set… on the app page, the value typed into the field, the job
/// page; the value ends up in the file and on no page.
#[tokio::test]
async fn in_a_browser_the_set_page_fits_a_phone_and_works_with_and_without_javascript() {
    let f = fixture().await;
    for (round, javascript) in [(1, true), (2, false)] {
        let browser = if javascript {
            Browser::start().await
        } else {
            Browser::without_javascript().await
        };
        let Some(browser) = browser else {
            return;
        };
        sign_in(&browser, &f.server, "ada", Role::Owner).await;
        browser.resize(390, 844).await;
        browser.goto(&f.server.at("/apps/web")).await;
        browser
            .click("a[href='/apps/web/secrets/GITEA_BOT_TOKEN/set']")
            .await;
        arrives_at(&browser, "/apps/web/secrets/GITEA_BOT_TOKEN/set").await;
        assert!(
            browser
                .text()
                .await
                .contains("Make a new token in Gitea first.")
        );
        if javascript {
            let overflow = browser
                .js(
                    "return document.documentElement.scrollWidth - window.innerWidth",
                    serde_json::json!([]),
                )
                .await;
            assert!(
                overflow.as_i64().unwrap() <= 0,
                "scrolls sideways by {overflow}px"
            );
            browser
                .screenshot(
                    &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("set-secret-phone.png"),
                )
                .await;
        }
        let typed = format!("typed-in-a-browser-{round}-Qm7c");
        browser.type_into("#secret-value", &typed).await;
        browser.click(".set-secret-form button[type=submit]").await;
        let url = arrives_at(&browser, "/jobs/").await;
        let job: i64 = url.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(f.server.finished(job).await, State::Succeeded);
        assert_eq!(value(&f.env, "GITEA_BOT_TOKEN"), typed);
        assert!(!browser.text().await.contains(&typed));
        if javascript {
            let html = browser
                .js(
                    "return document.documentElement.outerHTML",
                    serde_json::json!([]),
                )
                .await;
            assert!(!html.as_str().unwrap().contains(&typed));
        }
        // Back on the Set page, the field is empty.
        browser
            .goto(&f.server.at("/apps/web/secrets/GITEA_BOT_TOKEN/set"))
            .await;
        if javascript {
            let field = browser
                .js(
                    "return document.getElementById('secret-value').value",
                    serde_json::json!([]),
                )
                .await;
            assert_eq!(field, "");
        }
    }
}
