//! The command line, run as a user runs it: the real binary, real SQLite files.

mod support;

use support::cli::{Instance, run, text};

#[test]
fn migrate_creates_the_database() {
    let i = Instance::new("");
    assert!(!i.database().exists());
    let out = i.run(&["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(i.database().exists());
    assert!(text(&out.stdout).contains("database ready"));
    // Running it again is harmless.
    assert!(i.run(&["migrate"]).status.success());
}

#[test]
fn check_says_ok_and_prints_warnings() {
    let i = Instance::new("");
    let out = i.run(&["check"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "ok\n");
    // No sign-in is configured: opsdeck starts, but the operator is told.
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("nobody can sign in"),
        "{err}"
    );
}

#[test]
fn a_missing_config_is_a_clear_error_not_a_panic() {
    for args in [
        &["serve", "--config", "/nonexistent/opsdeck.toml"][..],
        &["migrate", "--config", "/nonexistent/opsdeck.toml"],
        &["token", "list", "--config", "/nonexistent/opsdeck.toml"],
        &["audit", "verify", "--config", "/nonexistent/opsdeck.toml"],
        &["audit", "verify", "--file", "/nonexistent/export.jsonl"],
    ] {
        let out = run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("/nonexistent/"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn dev_login_refuses_a_public_listen_address() {
    let i = Instance::new("[auth]\ndev_login = true\n");
    let config = std::fs::read_to_string(&i.config)
        .unwrap()
        .replace("127.0.0.1:", "0.0.0.0:");
    std::fs::write(&i.config, config).unwrap();
    let out = i.run(&["serve"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("dev_login") && err.contains("loopback"),
        "{err}"
    );
    assert!(err.contains("0.0.0.0"), "{err}");
    // It stopped before touching anything.
    assert!(!i.database().exists());
}

#[test]
fn token_create_prints_the_token_alone_and_is_audited() {
    let i = Instance::new("");
    let out = i.run(&["token", "create", "--name", "ci", "--role", "admin"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with("odk_") && lines[0].len() == 68,
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("shown only this once"));

    let export = text(
        &i.run(&["audit", "export", "--action", "token.create"])
            .stdout,
    );
    let row: serde_json::Value = serde_json::from_str(export.trim()).unwrap();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    assert_eq!(row["actor"], format!("cli:{user}"));
    assert_eq!(row["detail"], r#"{"name":"ci","role":"admin"}"#);
    assert!(
        !export.contains(lines[0]),
        "the token must not be in the audit log"
    );

    // The same name again, or a role that does not exist: clear errors.
    let again = i.run(&["token", "create", "--name", "ci", "--role", "admin"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("exists already"));
    assert!(again.stdout.is_empty());
    let bad = i.run(&["token", "create", "--name", "x", "--role", "root"]);
    assert!(text(&bad.stderr).contains("not one of viewer, operator, admin, owner"));
}

#[test]
fn token_list_and_revoke() {
    let i = Instance::new("");
    i.token("deploy-bot", "operator");
    let list = text(&i.run(&["token", "list"]).stdout);
    assert!(
        list.contains("deploy-bot") && list.contains("operator") && list.contains("active"),
        "{list}"
    );
    let out = i.run(&["token", "revoke", "--name", "deploy-bot"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&i.run(&["token", "list"]).stdout).contains("revoked"));
    let again = i.run(&["token", "revoke", "--name", "deploy-bot"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("no active token named"));
    let export = text(
        &i.run(&["audit", "export", "--action", "token.revoke"])
            .stdout,
    );
    assert_eq!(export.lines().count(), 1, "{export}");
}

#[tokio::test]
async fn a_created_token_authenticates_on_a_served_instance() {
    let i = Instance::new("");
    let token = i.token("ci", "viewer");
    let server = i.serve().await;
    let client = reqwest::Client::new();
    let apps = client
        .get(format!("{}/api/apps", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(apps.status(), 200);
    let anonymous = client
        .get(format!("{}/api/apps", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let revoked = i.run(&["token", "revoke", "--name", "ci"]);
    assert!(revoked.status.success());
    let after = client
        .get(format!("{}/api/apps", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn serve_records_the_config_load_and_stops_cleanly_on_sigterm() {
    let i = Instance::new("");
    let server = i.serve().await;
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, serde_json::json!({"ok": true, "database": "ok"}));
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");

    let export = text(
        &i.run(&["audit", "export", "--action", "config.load"])
            .stdout,
    );
    let row: serde_json::Value = serde_json::from_str(export.trim()).unwrap();
    let detail: serde_json::Value = serde_json::from_str(row["detail"].as_str().unwrap()).unwrap();
    let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&i.config).unwrap(),
    ));
    assert_eq!(detail["sha256"], expected);
    assert_eq!(row["actor"], "system:opsdeck");
}

/// The README's first command: `opsdeck demo` serves the dashboard on
/// 127.0.0.1:8080; the demo user signs in, clicks "hello", and the job's
/// output and audit rows are there.
#[tokio::test]
async fn the_demo_serves_the_dashboard_and_its_buttons_work() {
    const URL: &str = "http://127.0.0.1:8080";
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("opsdeck-demo");
    let demo = support::cli::Server {
        child: std::process::Command::new(support::cli::BIN)
            .args(["demo", "--dir"])
            .arg(&demo_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap())
            .spawn()
            .unwrap(),
        url: URL.into(),
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..600 {
        if let Ok(res) = http.get(format!("{URL}/healthz")).send().await {
            up = res.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
    assert!(up, "the demo did not answer on {URL}: {}", log());
    assert!(log().contains("opsdeck demo is ready"), "{}", log());

    // Sign in with the dev login, as the welcome text says.
    let res = http
        .post(format!("{URL}/auth/dev"))
        .header("origin", URL)
        .form(&[("login", "dee"), ("role", "admin"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let dashboard = http
        .get(format!("{URL}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for button in ["demo-app", "hello", "slow-build", "failing-check"] {
        assert!(dashboard.contains(button), "{button}: {dashboard}");
    }
    let csrf = dashboard
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with the CSRF token")
        .to_owned();

    // Click "hello": the job page, then its output.
    let res = http
        .post(format!("{URL}/apps/demo-app/actions/hello/run"))
        .header("cookie", &cookie)
        .header("origin", URL)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let job: i64 = res.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/jobs/")
        .parse()
        .unwrap();
    let token = run(&[
        "token",
        "create",
        "--config",
        &demo_dir.join("opsdeck.toml").display().to_string(),
        "--name",
        "readme",
        "--role",
        "admin",
    ]);
    let token = text(&token.stdout).trim().to_owned();
    assert_eq!(support::cli::job_end(URL, &token, job).await, "succeeded");
    let get = |path: String| {
        let request = http.get(format!("{URL}{path}")).bearer_auth(&token);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let output = get(format!("/api/jobs/{job}/output")).await;
    assert!(output.contains("hello from "), "{output}");
    let audit = get("/api/audit?actor=dee".into()).await;
    assert!(
        audit.contains("\"signin\"") && audit.contains("\"job.request\""),
        "{audit}"
    );
    drop(demo);
}

/// `RUST_LOG` chooses what is logged, per target too; a value opsdeck does
/// not understand is said, and the default level used.
#[test]
fn rust_log_chooses_what_is_logged_and_a_bad_one_is_said() {
    let i = Instance::new("");
    let migrate = |log: &str| {
        std::process::Command::new(support::cli::BIN)
            .args(["migrate", "--config", i.config.to_str().unwrap()])
            .env("RUST_LOG", log)
            .output()
            .unwrap()
    };
    let out = migrate("warn,sqlx=debug");
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("DEBUG sqlx::query"),
        "{}",
        text(&out.stderr)
    );
    let out = migrate("opsdeck=loud");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stderr),
        "warning: RUST_LOG is not understood (error parsing level filter: expected one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\", or a number 0-5); logging at \"warn\"\n"
    );
    assert!(text(&out.stdout).contains("database ready"));
}
