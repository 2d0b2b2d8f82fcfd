//! The audit chain against real SQLite files and the real binary: what an
//! admin sees from `opsdeck audit verify` when the log was tampered with.

mod support;

use opsdeck::audit::{Audit, Event, Outcome};
use opsdeck::auth::Actor;
use support::cli::{Instance, path_str, text};

/// `n` rows written by opsdeck itself, through the library.
async fn instance_with_rows(n: usize) -> Instance {
    let i = Instance::new("");
    let db = opsdeck::db::open(&i.dir.path().join("data")).await.unwrap();
    let audit = Audit::new(db.clone(), &Default::default());
    for k in 0..n {
        audit
            .record(
                Event::new(&Actor::system("tester"), "job.request", "rfc-app")
                    .detail(serde_json::json!({"k": k, "note": "quote \" and, comma\nnewline"})),
            )
            .await
            .unwrap();
    }
    db.close().await;
    i
}

fn verify(i: &Instance) -> (Option<i32>, String, String) {
    let out = i.run(&["audit", "verify"]);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

async fn drop_triggers(db: &sqlx::SqlitePool) {
    sqlx::query("DROP TRIGGER audit_no_update")
        .execute(db)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_no_delete")
        .execute(db)
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_writers_in_several_processes_keep_one_chain() {
    let i = Instance::new("");
    let db = opsdeck::db::open(&i.dir.path().join("data")).await.unwrap();
    let audit = Audit::new(db.clone(), &Default::default());
    // Tasks of this process and other opsdeck processes write at once.
    let cli: Vec<std::process::Child> = (0..4)
        .map(|k| {
            std::process::Command::new(support::cli::BIN)
                .args([
                    "token",
                    "create",
                    "--name",
                    &format!("t{k}"),
                    "--role",
                    "viewer",
                    "--config",
                ])
                .arg(&i.config)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let audit = audit.clone();
            tokio::spawn(async move {
                for k in 0..50 {
                    audit
                        .record(
                            Event::new(&Actor::system(&format!("writer{t}")), "job.start", "app")
                                .job(k)
                                .outcome(Outcome::Failed),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for mut c in cli {
        assert!(c.wait().unwrap().success());
    }
    let (code, stdout, stderr) = verify(&i);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "verified 404 events (through #404)\n");
}

#[tokio::test]
async fn the_triggers_refuse_update_and_delete() {
    let i = instance_with_rows(3).await;
    let db = i.sqlite().await;
    let update = sqlx::query("UPDATE audit_events SET actor = 'eve' WHERE id = 2")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sqlx::query("DELETE FROM audit_events WHERE id = 2")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    assert_eq!(verify(&i).1, "verified 3 events (through #3)\n");
}

/// Migration 0080 rebuilds the table to allow `cancelled`: rows written
/// before it keep their chain, and the table stays append-only.
#[tokio::test]
async fn rows_written_before_the_cancelled_outcome_still_verify() {
    let i = Instance::new("");
    let data = i.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = opsdeck::db::connect(&data.join("opsdeck.db"))
        .await
        .unwrap();
    support::server::migrate_before(&db, 80).await;
    let audit = Audit::new(db.clone(), &Default::default());
    for outcome in [Outcome::Ok, Outcome::Failed, Outcome::Denied] {
        let event = Event::new(&Actor::system("tester"), "job.end", "web").outcome(outcome);
        audit.record(event).await.unwrap();
    }
    let refused = sqlx::query(
        "INSERT INTO audit_events (at, actor, action, outcome, prev_hash, hash)
         VALUES (0, 'x', 'x', 'cancelled', '', '')",
    )
    .execute(&db)
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("CHECK"), "{refused}");
    db.close().await;

    let db = opsdeck::db::open(&data).await.unwrap();
    let audit = Audit::new(db.clone(), &Default::default());
    let event = Event::new(&Actor::system("tester"), "job.end", "web").outcome(Outcome::Cancelled);
    audit.record(event).await.unwrap();
    let update = sqlx::query("UPDATE audit_events SET outcome = 'ok' WHERE id = 2")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sqlx::query("DELETE FROM audit_events WHERE id = 1")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    let outcomes: Vec<String> = sqlx::query_scalar("SELECT outcome FROM audit_events ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(outcomes, ["ok", "failed", "denied", "cancelled"]);
    db.close().await;
    assert_eq!(verify(&i).1, "verified 4 events (through #4)\n");
}

#[tokio::test]
async fn a_row_changed_behind_opsdecks_back_is_named() {
    let i = instance_with_rows(10).await;
    let db = i.sqlite().await;
    drop_triggers(&db).await;
    sqlx::query("UPDATE audit_events SET actor = 'someone-else' WHERE id = 6")
        .execute(&db)
        .await
        .unwrap();
    let (code, _, stderr) = verify(&i);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("row #6 was changed"), "{stderr}");
}

#[tokio::test]
async fn a_row_changed_with_its_hash_recomputed_breaks_the_next_link() {
    let i = instance_with_rows(10).await;
    let db = i.sqlite().await;
    drop_triggers(&db).await;
    let sql = format!(
        "SELECT {} FROM audit_events WHERE id = 4",
        "id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash"
    );
    let mut row: opsdeck::audit::Record = sqlx::query_as(&sql).fetch_one(&db).await.unwrap();
    row.outcome = "ok".into();
    row.detail = r#"{"rewritten":true}"#.into();
    row.hash = opsdeck::audit::row_hash(&row);
    sqlx::query("UPDATE audit_events SET detail = ?, hash = ? WHERE id = 4")
        .bind(&row.detail)
        .bind(&row.hash)
        .execute(&db)
        .await
        .unwrap();
    let (code, _, stderr) = verify(&i);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("row #5 does not link to row #4"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_deleted_row_is_named() {
    let i = instance_with_rows(10).await;
    let db = i.sqlite().await;
    drop_triggers(&db).await;
    sqlx::query("DELETE FROM audit_events WHERE id = 3")
        .execute(&db)
        .await
        .unwrap();
    let (code, _, stderr) = verify(&i);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("row #3 was deleted"), "{stderr}");

    // Deleting the first rows is seen too.
    sqlx::query("DELETE FROM audit_events WHERE id < 3")
        .execute(&db)
        .await
        .unwrap();
    let (code, _, stderr) = verify(&i);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("rows #1 to #3 were deleted"), "{stderr}");
}

#[tokio::test]
async fn an_inserted_row_is_named() {
    let i = instance_with_rows(10).await;
    let db = i.sqlite().await;
    drop_triggers(&db).await;
    // Make room after #5 (two steps: ids must stay unique), then forge #6.
    sqlx::query("UPDATE audit_events SET id = id + 1000 WHERE id > 5")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET id = id - 999 WHERE id > 1000")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
         VALUES (6, 0, 'ben', 'owner', 'deploy', 'rfc-app', '{}', 'ok', NULL, '', 'forged', 'forged')",
    )
    .execute(&db)
    .await
    .unwrap();
    let (code, _, stderr) = verify(&i);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("row #6 was inserted"), "{stderr}");

    // A forged row at the end, linked to the real last row.
    let i = instance_with_rows(4).await;
    let db = i.sqlite().await;
    sqlx::query(
        "INSERT INTO audit_events (at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
         SELECT 0, 'ben', 'owner', 'deploy', 'rfc-app', '{}', 'ok', NULL, '', hash, 'forged' FROM audit_events WHERE id = 4",
    )
    .execute(&db)
    .await
    .unwrap();
    let (code, _, stderr) = verify(&i);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("row #5"), "{stderr}");
}

#[tokio::test]
async fn an_export_verifies_offline_and_an_edited_one_does_not() {
    let i = instance_with_rows(20).await;
    let file = i.dir.path().join("export.jsonl");
    let out = i.run(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--output",
        path_str(&file),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("exported 20 events"));

    let ok = support::cli::run(&["audit", "verify", "--file", path_str(&file)]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "verified 20 events (through #20)\n");

    let edited = std::fs::read_to_string(&file).unwrap().replacen(
        r#""id":12,"at":"#,
        r#""id":12,"at":1"#,
        1,
    );
    std::fs::write(&file, edited).unwrap();
    let bad = support::cli::run(&["audit", "verify", "--file", path_str(&file)]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("row #12 was changed"),
        "{}",
        text(&bad.stderr)
    );

    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines[11] = "not json".into();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let bad = support::cli::run(&["audit", "verify", "--file", path_str(&file)]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("line 12: not an audit row"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test]
async fn a_filtered_export_verifies_row_by_row() {
    let i = instance_with_rows(5).await;
    let db = opsdeck::db::connect(&i.database()).await.unwrap();
    let audit = Audit::new(db, &Default::default());
    audit
        .record(Event::new(&Actor::system("ben"), "deploy", "rfc-app").outcome(Outcome::Denied))
        .await
        .unwrap();
    audit
        .record(Event::new(&Actor::system("tester"), "job.end", "rfc-app"))
        .await
        .unwrap();
    audit
        .record(Event::new(&Actor::system("ben"), "deploy", "rfc-app").outcome(Outcome::Denied))
        .await
        .unwrap();
    let file = i.dir.path().join("ben.jsonl");
    let out = i.run(&[
        "audit",
        "export",
        "--actor",
        "ben",
        "--outcome",
        "denied",
        "--output",
        path_str(&file),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ok = support::cli::run(&["audit", "verify", "--file", path_str(&file)]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let stdout = text(&ok.stdout);
    assert!(
        stdout.starts_with(
            "verified 2 events (through #8); 1 rows in between are not in this export"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn csv_export_has_the_header_and_every_row() {
    let i = instance_with_rows(3).await;
    let out = i.run(&["audit", "export", "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    assert!(
        csv.starts_with(
            "id,at,actor,role,action,app,detail,outcome,job_id,remote,prev_hash,hash\n"
        )
    );
    // Quotes doubled, fields with commas and newlines quoted.
    assert!(csv.contains(r#"2,"#), "{csv}");
    assert!(
        csv.contains(r#","{""k"":1,""note"":""quote \"" and, comma\nnewline""}",ok,,,"#),
        "{csv}"
    );
    assert!(csv.contains(",0000000000000000000000000000000000000000000000000000000000000000,"));
}

#[tokio::test]
async fn export_filters_are_checked() {
    let i = instance_with_rows(1).await;
    for (args, expected) in [
        (
            &["--since", "yesterday"][..],
            "since \"yesterday\" is not a time",
        ),
        (&["--outcome", "maybe"], "outcome \"maybe\" is not one of"),
        (&["--format", "xml"], "format \"xml\" is not jsonl or csv"),
        (
            &["--since", "2026-12-03", "--until", "2026-12-01"],
            "the time range is empty",
        ),
    ] {
        let mut all = vec!["audit", "export"];
        all.extend(args);
        let out = i.run(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let long = "x".repeat(10_000);
    let out = i.run(&["audit", "export", "--actor", &long]);
    assert!(text(&out.stderr).contains("longer than 200 characters"));
    // An injection attempt is only ever data: no rows, no error.
    let out = i.run(&["audit", "export", "--actor", "x' OR '1'='1"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

/// `[audit] journal = true`: each row also reaches a real journald with the
/// structured fields a central log collector matches on.
#[test]
fn rows_are_forwarded_to_the_journal_with_structured_fields() {
    let Some(sandbox) = support::sandbox::Sandbox::boot() else {
        return;
    };
    let i = Instance::new("[audit]\njournal = true\n");
    // Run inside the sandbox, where the journal socket is its journald's.
    let out = sandbox
        .command(support::cli::BIN)
        .args(["token", "create", "--name", "forwarded", "--role", "viewer"])
        .args(["--config", path_str(&i.config)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // journald takes datagrams asynchronously: wait for the entry.
    let entry = (0..500)
        .find_map(|_| {
            let json = sandbox.run_ok(&[
                "journalctl",
                "--no-pager",
                "-o",
                "json",
                "OPSDECK_ACTION=token.create",
            ]);
            let found = json.lines().next().map(str::to_owned);
            if found.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            found
        })
        .expect("the audit row reached the journal");
    let entry: serde_json::Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(entry["OPSDECK_AUDIT_ID"], "1", "{entry}");
    assert_eq!(entry["OPSDECK_OUTCOME"], "ok");
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "opsdeck");
    assert!(entry["OPSDECK_ACTOR"].as_str().unwrap().starts_with("cli:"));
    assert!(
        entry["OPSDECK_DETAIL"]
            .as_str()
            .unwrap()
            .contains("forwarded")
    );
    // The journal's copy carries the chain hash, so it can be checked
    // against the database (or an export) later.
    let export = i.run(&["audit", "export", "--format", "jsonl"]);
    let row: serde_json::Value =
        serde_json::from_str(text(&export.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(entry["OPSDECK_HASH"], row["hash"], "{row}");
}
