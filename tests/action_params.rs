//! Parameters of actions (`[[app.action.param]]`): a value reaches the
//! program as one argv word through its `{name}`; values a parameter
//! refuses are answered 400 and audited as denied, nothing queued;
//! `choices_from` offers what its command printed.

mod support;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use support::server::{Server, assert_refused, job_of, json};

/// `promote` runs a script that writes its argv (JSON) next to itself.
async fn promote() -> (Server, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep();
    let (dump, argv) = support::argv_recorder(&dir);
    let server = support::server::start(&format!(
        r#"[[app]]
name = "wppackages"

[[app.action]]
name = "promote"
run = ["python3", "{}", "--build", "{{build}}", "note: {{note}}"]

[[app.action.param]]
name = "build"
label = "Build to promote"
kind = "choice"
choices_from = ["printf", "b-41\nb-42\n"]
required = true

[[app.action.param]]
name = "note"
pattern = "[A-Za-z0-9][A-Za-z0-9 ;./-]*"
default = "none"
"#,
        dump.display()
    ))
    .await;
    (server, argv)
}

async fn run(server: &Server, token: &str, params: serde_json::Value) -> reqwest::Response {
    let body = serde_json::json!({ "params": params });
    server
        .post_json("/api/apps/wppackages/actions/promote/run", token, &body)
        .await
}

#[tokio::test]
async fn a_value_reaches_the_program_as_one_word() {
    let (server, argv) = promote().await;
    let token = server.token("ci", Role::Operator).await;
    let res = run(
        &server,
        &token,
        serde_json::json!({"build": "b-42", "note": "x; rm -rf /"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let job = json(res).await["job"].as_i64().unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    let got = support::recorded_argvs(&argv);
    assert_eq!(got, [["--build", "b-42", "note: x; rm -rf /"]]);
    // The job's title and plan show the values; its request row too.
    let shown = server.ctx.jobs.job(job).await.unwrap();
    let titles: Vec<&str> = shown.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles[0], "Check the parameters");
    assert!(
        titles[1].contains("build=b-42 note='x; rm -rf /'"),
        "{titles:?}"
    );
    let detail = server.request_detail(job).await;
    assert!(detail.contains("build=b-42"), "{detail}");

    // The default fills an absent optional value.
    let res = run(&server, &token, serde_json::json!({"build": "b-41"})).await;
    let job = json(res).await["job"].as_i64().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    let got = support::recorded_argvs(&argv);
    assert_eq!(got[1], ["--build", "b-41", "note: none"]);
}

#[tokio::test]
async fn refused_values_are_400_and_audited_as_denied() {
    let (server, _argv) = promote().await;
    let token = server.token("ci", Role::Operator).await;
    let before = server.job_count().await;
    for (params, says) in [
        (
            serde_json::json!({"build": "b-42", "note": "--help"}),
            "does not match",
        ),
        (serde_json::json!({"build": "--help"}), "starts with \"-\""),
        (
            serde_json::json!({"build": "b-42", "note": "a\nb"}),
            "line break",
        ),
        (serde_json::json!({"build": "b-42\u{0}"}), "NUL"),
        (
            serde_json::json!({"build": "b-9"}),
            "not one of the choices",
        ),
        (serde_json::json!({"note": "fine"}), "is required"),
        (
            serde_json::json!({"build": "b-42", "tag": "v1"}),
            "no parameter named \"tag\"",
        ),
    ] {
        let res = run(&server, &token, params.clone()).await;
        assert_eq!(res.status(), 400, "{params}");
        let error = json(res).await["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{params}: {error}");
    }
    assert_eq!(
        server.job_count().await,
        before,
        "a refused request queued a job"
    );
    let denied = server.audit_rows("action.params").await;
    assert_eq!(denied.len(), 7, "{denied:?}");
    assert!(denied.iter().all(|(outcome, _)| outcome == "denied"));
    assert!(denied[0].1.contains("promote"), "{denied:?}");
}

#[tokio::test]
async fn the_app_page_offers_what_choices_from_printed_and_runs_the_form() {
    let (server, argv) = promote().await;
    let (cookie, csrf) = server.session("ada", Role::Operator).await;
    let page = server
        .browse("/apps/wppackages", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<option>b-41</option><option>b-42</option>"),
        "{page}"
    );
    assert!(page.contains(r#"name="param.note" value="none""#), "{page}");
    // The dashboard links to the app page, where the choices are listed.
    let dashboard = server.browse("/", &cookie).await.text().await.unwrap();
    assert!(
        dashboard.contains("/apps/wppackages#action-promote"),
        "{dashboard}"
    );
    let res = server
        .post_form(
            "/apps/wppackages/actions/promote/run",
            (&cookie, &csrf),
            &[("param.build", "b-41"), ("param.note", "from the form")],
        )
        .await;
    assert_eq!(server.finished(job_of(&res)).await, State::Succeeded);
    let got = support::recorded_argvs(&argv);
    assert_eq!(got, [["--build", "b-41", "note: from the form"]]);
}

/// An action of `rfc-app` (its repo a real clone) that records the
/// commit it is given: a `commit` parameter.
async fn pin(repos: &support::repos::Repos) -> (Server, std::path::PathBuf) {
    let (dump, argv) = support::argv_recorder(repos.app.parent().unwrap());
    let server = support::server::start(&format!(
        r#"[[app]]
name = "rfc-app"
repo = "{}"

[[app.action]]
name = "pin"
run = ["python3", "{}", "{{commit}}"]

[[app.action.param]]
name = "commit"
kind = "commit"
required = true
"#,
        repos.app.display(),
        dump.display()
    ))
    .await;
    (server, argv)
}

#[tokio::test]
async fn a_commit_parameter_passes_the_full_sha_and_refuses_other_words() {
    let repos = support::repos::Repos::new();
    let (server, argv) = pin(&repos).await;
    let sha = support::repos::sh_git(&repos.app, &["rev-parse", "HEAD"]);
    let token = server.token("ci", Role::Operator).await;
    let path = "/api/apps/rfc-app/actions/pin/run";
    let body = |commit: &str| serde_json::json!({"params": {"commit": commit}});
    // A short SHA and a branch both become the full SHA.
    for given in [&sha[..7], "main"] {
        let res = server.post_json(path, &token, &body(given)).await;
        assert_eq!(res.status(), 202, "{given}");
        let job = json(res).await["job"].as_i64().unwrap();
        let (state, output) = server.outcome(job).await;
        assert_eq!(state, State::Succeeded, "{output}");
    }
    assert_eq!(
        support::recorded_argvs(&argv),
        [[sha.clone()], [sha.clone()]]
    );

    let before = server.job_count().await;
    for (given, says) in [
        ("deadbee", "is not a branch, tag or commit"),
        ("--help", "starts with \"-\""),
        ("main;id", "is refused"),
    ] {
        assert_refused(server.post_json(path, &token, &body(given)).await, says).await;
    }
    assert_eq!(server.job_count().await, before);
    server.assert_denied("action.params", 3, "pin").await;

    // The form suggests the recent commits.
    let (cookie, _) = server.session("ada", Role::Operator).await;
    let page = server.page("/apps/rfc-app", &cookie).await;
    assert!(
        page.contains(&format!(
            r#"<option value="{sha}">{} First version — Ada Lovelace</option>"#,
            &sha[..7]
        )),
        "{page}"
    );
    assert!(
        page.contains(r#"list="param-pin-commit-offered""#),
        "{page}"
    );
}

#[tokio::test]
async fn a_release_parameter_offers_the_release_log() {
    let dir = tempfile::tempdir().unwrap();
    let (dump, argv) = support::argv_recorder(dir.path());
    let server = support::server::start(&format!(
        r#"[[app]]
name = "community"
environment = "staging"
strategy = "command"
deploy = [ {{ run = ["true"] }} ]

[[app.action]]
name = "inspect"
run = ["python3", "{}", "{{release}}"]

[[app.action.param]]
name = "release"
kind = "release"
required = true
"#,
        dump.display()
    ))
    .await;
    let ada = support::webapp::ada();
    for tag in ["t1", "t2"] {
        let job = opsdeck::ops::deploy::request(&server.ctx, &ada, "community", tag)
            .await
            .unwrap();
        assert_eq!(server.finished(job).await, State::Succeeded);
    }
    let (cookie, csrf) = server.session("ada", Role::Operator).await;
    let page = server.page("/apps/community", &cookie).await;
    assert!(
        page.contains(
            r#"<option value="t2">t2 — release 2, deploy t2 by ada</option><option value="t1">t1 — release 1, deploy t1 by ada</option>"#
        ),
        "{page}"
    );
    // The dashboard cannot list them: it links to the app's page.
    let dashboard = server.browse("/", &cookie).await.text().await.unwrap();
    assert!(
        dashboard.contains("/apps/community#action-inspect"),
        "{dashboard}"
    );
    let path = "/apps/community/actions/inspect/run";
    let session = (cookie.as_str(), csrf.as_str());
    let res = server
        .post_form(path, session, &[("param.release", "t1")])
        .await;
    assert_eq!(server.finished(job_of(&res)).await, State::Succeeded);
    assert_eq!(support::recorded_argvs(&argv), [["t1"]]);
    let res = server
        .post_form(path, session, &[("param.release", "t3")])
        .await;
    assert_refused(res, "not one of the choices").await;
    server.assert_denied("action.params", 1, "inspect").await;
}

#[tokio::test]
async fn an_env_file_action_sees_the_apps_variables_masked_in_its_output() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("app.env");
    std::fs::write(
        &env,
        "# the app's settings\nAPI_TOKEN=tok-0123456789abcdef\nexport GREETING='hello from the env file'\nPORT=8000\n",
    )
    .unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    let seen = dir.path().join("seen");
    let server = support::server::start(&format!(
        r#"[[app]]
name = "wppackages"
env_file = "{env}"

[[app.action]]
name = "show"
run = ["python3", "-c", 'import os, sys; v = os.environ; open(sys.argv[1], "w").write("|".join(v[k] for k in ["API_TOKEN", "GREETING", "PORT", "MODE"])); print("token", v["API_TOKEN"]); print("greeting", v["GREETING"])', "{seen}"]
env = {{ MODE = "from-env", PORT = "9000" }}
env_file = true

[[app.action]]
name = "plain"
run = ["python3", "-c", 'import os; print("token", os.environ.get("API_TOKEN", "unset"))']
"#,
        env = env.display(),
        seen = seen.display()
    ))
    .await;
    let ada = support::webapp::ada();
    let run =
        |action: &'static str| opsdeck::ops::actions::run(&server.ctx, &ada, "wppackages", action);
    let (state, output) = server.outcome(run("show").await.unwrap()).await;
    assert_eq!(state, State::Succeeded, "{output}");
    // The program saw the file's values (`env` wins over the file)…
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "tok-0123456789abcdef|hello from the env file|9000|from-env"
    );
    // …and its output shows them masked.
    assert!(output.contains("token [redacted]\n"), "{output}");
    assert!(output.contains("greeting [redacted]\n"), "{output}");
    assert!(!output.contains("tok-0123"), "{output}");
    assert!(
        output.contains(&format!("# with the variables of {}", env.display())),
        "{output}"
    );
    // Without env_file = true the variables stay out.
    let (state, output) = server.outcome(run("plain").await.unwrap()).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert!(output.contains("token unset"), "{output}");

    // A missing env file fails the step, saying so; nothing runs.
    std::fs::remove_file(&seen).unwrap();
    std::fs::remove_file(&env).unwrap();
    let (state, output) = server.outcome(run("show").await.unwrap()).await;
    assert_eq!(state, State::Failed, "{output}");
    assert!(
        output.contains("cannot load the app's env file into the step's environment"),
        "{output}"
    );
    assert!(output.contains("No such file"), "{output}");
    assert!(!seen.exists());
}

/// `kind = "backup"`: the app page offers the full path of each backup of
/// the app's `sqlite-backup` sweep, newest first (the Restore list); the
/// path picked reaches the program as one word; a path that is not one of
/// them is refused (400, denied row), nothing queued.
#[tokio::test]
async fn a_backup_parameter_offers_the_sweeps_backups() {
    let dir = tempfile::tempdir().unwrap().keep();
    let (dump, argv) = support::argv_recorder(&dir);
    let db = dir.join("app.db");
    let made = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE t (n INTEGER);")
        .status()
        .expect("sqlite3 (Debian package sqlite3) is needed for this test");
    assert!(made.success());
    let backups = dir.join("backups");
    let server = support::server::start(&format!(
        r#"[[app]]
name = "rfc-app"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "{}"
dir = "{}"
keep = 5

[[app.action]]
name = "inspect"
run = ["python3", "{}", "{{snapshot}}"]

[[app.action.param]]
name = "snapshot"
label = "Backup to inspect"
kind = "backup"
required = true
"#,
        db.display(),
        backups.display(),
        dump.display()
    ))
    .await;
    let owner = server.token("ben", Role::Owner).await;
    let alice = support::deck::actor("alice", Role::Operator);
    for _ in 0..2 {
        let job = opsdeck::ops::sweeps::request(&server.ctx, &alice, "rfc-app", "db-backup", false)
            .await
            .unwrap();
        assert_eq!(server.finished(job).await, State::Succeeded);
    }
    let mut made: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    made.sort();
    made.reverse();
    assert_eq!(made.len(), 2);

    let (cookie, _) = server.session("alice", Role::Operator).await;
    let page = server.page("/apps/rfc-app", &cookie).await;
    assert!(
        page.contains(&format!(
            "<option>{}</option><option>{}</option>",
            made[0], made[1]
        )),
        "{page}"
    );
    let dashboard = server.browse("/", &cookie).await.text().await.unwrap();
    assert!(
        dashboard.contains("/apps/rfc-app#action-inspect"),
        "{dashboard}"
    );

    let path = "/api/apps/rfc-app/actions/inspect/run";
    let body = |snapshot: &str| serde_json::json!({ "params": { "snapshot": snapshot } });
    let res = server.post_json(path, &owner, &body(&made[1])).await;
    assert_eq!(res.status(), 202);
    let job = json(res).await["job"].as_i64().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(support::recorded_argvs(&argv), [[made[1].clone()]]);

    let before = server.job_count().await;
    for hostile in [
        db.display().to_string(),
        "/etc/passwd".into(),
        format!("{}/../app.db", backups.display()),
    ] {
        let res = server.post_json(path, &owner, &body(&hostile)).await;
        assert_refused(res, "not one of the choices").await;
    }
    assert_eq!(server.job_count().await, before);
    server.assert_denied("action.params", 3, "inspect").await;
}
