//! Parameters of actions (`[[app.action.param]]`): a value reaches the
//! program as one argv word through its `{name}`; values a parameter
//! refuses are answered 400 and audited as denied, nothing queued;
//! `choices_from` offers what its command printed.

mod support;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use support::server::{Server, client, json};

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
    client()
        .post(server.at("/api/apps/wppackages/actions/promote/run"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "params": params }))
        .send()
        .await
        .unwrap()
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
    let (detail,): (String,) = sqlx::query_as(
        "SELECT detail FROM audit_events WHERE action = 'job.request' AND job_id = ?",
    )
    .bind(job)
    .fetch_one(&server.ctx.db)
    .await
    .unwrap();
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
    let denied: Vec<(String, String)> = sqlx::query_as(
        "SELECT outcome, detail FROM audit_events WHERE action = 'action.params' ORDER BY id",
    )
    .fetch_all(&server.ctx.db)
    .await
    .unwrap();
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
    let res = client()
        .post(server.at("/apps/wppackages/actions/promote/run"))
        .header("cookie", &cookie)
        .header("origin", &server.url)
        .form(&[
            ("csrf", csrf.as_str()),
            ("param.build", "b-41"),
            ("param.note", "from the form"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    let job: i64 = location.trim_start_matches("/jobs/").parse().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    let got = support::recorded_argvs(&argv);
    assert_eq!(got, [["--build", "b-41", "note: from the form"]]);
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
    let page = server
        .browse("/apps/rfc-app", &cookie)
        .await
        .text()
        .await
        .unwrap();
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

    let run = |snapshot: String| {
        client()
            .post(server.at("/api/apps/rfc-app/actions/inspect/run"))
            .bearer_auth(&owner)
            .json(&serde_json::json!({ "params": { "snapshot": snapshot } }))
            .send()
    };
    let res = run(made[1].clone()).await.unwrap();
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
        let res = run(hostile.clone()).await.unwrap();
        assert_eq!(res.status(), 400, "{hostile}");
        let error = json(res).await["error"].as_str().unwrap().to_owned();
        assert!(error.contains("not one of the choices"), "{error}");
    }
    assert_eq!(server.job_count().await, before);
    let (denied,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM audit_events WHERE action = 'action.params' AND outcome = 'denied'",
    )
    .fetch_one(&server.ctx.db)
    .await
    .unwrap();
    assert_eq!(denied, 3);
}
