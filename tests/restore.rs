//! Restore of a `sqlite-backup` sweep's backup, shaped like the rfc-app
//! runbook's "Restore a snapshot" (stop, copy the backup over the
//! database, start): a real service under a real unit (the systemd
//! sandbox) serves the rows of a real SQLite database; the test restores a
//! backup and reads the rows back from the service, refuses a corrupt
//! backup without stopping anything, and sees a restore whose service
//! fails its health check put the previous database back. The page's
//! Restore buttons, their confirmation and the API's refusals are checked
//! over plain HTTP.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use support::sandbox::{self, Sandbox, sh};
use support::server::{Server, client, json};

/// Serves the notes in the database, one per line, opened anew for each
/// request; `/health` answers 500 while a note says `poison`.
const SERVICE: &str = r#"import http.server, sqlite3, sys
db, port = sys.argv[1], int(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        con = sqlite3.connect(db)
        notes = [row[0] for row in con.execute("SELECT body FROM notes ORDER BY id")]
        con.close()
        status = 500 if self.path == "/health" and "poison" in notes else 200
        body = ("\n".join(notes) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// Runs SQL on `db` with the sqlite3 command-line tool.
fn sql(db: &Path, statements: &str) {
    let done = Command::new("sqlite3")
        .arg(db)
        .arg(statements)
        .output()
        .expect("sqlite3 (Debian package sqlite3) is needed for this test");
    assert!(done.status.success(), "{done:?}");
}

/// The notes app: a database of notes (WAL, mode 0640), its service's
/// unit, and the `[[app]]` block with a `sqlite-backup` sweep.
fn notes_app(dir: &Path, port: u16) -> String {
    let db = dir.join("notes.db");
    sql(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); \
         INSERT INTO notes (body) VALUES ('first');",
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(dir.join("service.py"), SERVICE).unwrap();
    std::fs::write(
        "/run/systemd/system/notes.service",
        format!(
            "[Service]\nExecStart=/usr/bin/python3 {} {} {port}\n",
            dir.join("service.py").display(),
            db.display()
        ),
    )
    .unwrap();
    sh(&["systemctl", "daemon-reload"]);
    sh(&["systemctl", "start", "notes.service"]);
    notes_block(
        &format!(
            "units = [\"notes.service\"]\nhealth = {{ url = \"http://127.0.0.1:{port}/health\", timeout = \"3s\" }}"
        ),
        &db,
        dir,
    )
}

/// The `[[app]]` block of `notes` (with the lines `app`) and its
/// `db-backup` sweep of `db`, keeping 10 backups in `dir/backups`.
fn notes_block(app: &str, db: &Path, dir: &Path) -> String {
    format!(
        r#"[[app]]
name = "notes"
{app}

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "{}"
dir = "{}"
keep = 10
"#,
        db.display(),
        dir.join("backups").display()
    )
}

/// `systemctl show -p PROP --value unit`.
fn show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A notes database (one note, `first`) in `dir`, not served by a unit,
/// and an opsdeck whose app `notes` backs it up (`db-backup`); `app`
/// goes into the `[[app]]` block, `more` after the sweep.
async fn unserved_notes(dir: &Path, app: &str, more: &str) -> (std::path::PathBuf, Server) {
    let db = dir.join("notes.db");
    sql(
        &db,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('first');",
    );
    let server = support::server::start(&format!("{}{more}", notes_block(app, &db, dir))).await;
    (db, server)
}

/// The notes in `db`, comma-joined, read with the sqlite3 tool.
fn notes_in(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("SELECT group_concat(body, ',') FROM notes")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The backups of the sweep as the API lists them, newest first.
async fn listed(server: &Server, token: &str) -> Vec<String> {
    let sweeps = json(server.get_as("/api/apps/notes/sweeps", token).await).await;
    sweeps[0]["restore"]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn restore(server: &Server, token: &str, backup: &str) -> reqwest::Response {
    client()
        .post(server.at("/api/apps/notes/sweeps/db-backup/restore"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "backup": backup }))
        .send()
        .await
        .unwrap()
}

/// Starts a restore through the API and follows it: its state and output.
async fn restored(server: &Server, token: &str, backup: &str) -> (i64, State, String) {
    let res = restore(server, token, backup).await;
    assert_eq!(res.status(), 202);
    let job = json(res).await["job"].as_i64().unwrap();
    let (state, output) = server.outcome(job).await;
    (job, state, output)
}

/// Makes a backup with the sweep; its name.
async fn back_up(server: &Server, token: &str) -> String {
    let res = client()
        .post(server.at("/api/apps/notes/sweeps/db-backup/run"))
        .bearer_auth(token)
        .json(&serde_json::json!({"dry_run": false}))
        .send()
        .await
        .unwrap();
    let job = json(res).await["job"].as_i64().unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    listed(server, token).await.remove(0)
}

#[test]
fn restore_puts_a_backup_back_on_a_real_systemd() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_restore_puts_a_backup_back");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_restore_puts_a_backup_back() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let db = dir.path().join("notes.db");
    let server = support::server::start(&notes_app(dir.path(), port)).await;
    let owner = server.token("ben", Role::Owner).await;
    let notes = || async { support::webapp::answer_when_up(port).await };
    assert_eq!(notes().await, "first");

    // A backup with one note; then the app writes a second.
    let first = back_up(&server, &owner).await;
    sql(&db, "INSERT INTO notes (body) VALUES ('second');");
    assert_eq!(notes().await, "first\nsecond");

    // Restore: the unit stops and starts (a new process), the service
    // serves the backup's notes, the database keeps its mode, and the
    // notes it had are kept as a new backup, offered first.
    let pid = show("notes.service", "MainPID");
    let (job, state, output) = restored(&server, &owner, &first).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert!(output.contains("stopped notes.service"), "{output}");
    assert!(output.contains("PRAGMA integrity_check ok"), "{output}");
    assert_ne!(show("notes.service", "MainPID"), pid);
    assert_eq!(show("notes.service", "ActiveState"), "active");
    assert_eq!(notes().await, "first");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    let backups = listed(&server, &owner).await;
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(backups[1], first);
    let kept = dir.path().join("backups").join(&backups[0]);
    let out = Command::new("sqlite3")
        .arg(&kept)
        .arg("SELECT group_concat(body, ',') FROM notes")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "first,second");
    // Audited like every job, and what it put where.
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT action, outcome FROM audit_events WHERE job_id = ? ORDER BY id")
            .bind(job)
            .fetch_all(&server.ctx.db)
            .await
            .unwrap();
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["job.request", "job.start", "database.restore", "job.end"]
    );

    // A corrupt backup (named like the sweep's) is refused by the first
    // step: the unit is never stopped, the database never touched.
    let corrupt = "notes-20200101T000000000Z.db";
    let mut bytes = std::fs::read(dir.path().join("backups").join(&first)).unwrap();
    let middle = bytes.len() / 2;
    bytes[100..middle].fill(0x5a);
    std::fs::write(dir.path().join("backups").join(corrupt), bytes).unwrap();
    let pid = show("notes.service", "MainPID");
    let since = show("notes.service", "ActiveEnterTimestamp");
    let before = std::fs::read(&db).unwrap();
    let (job, state, output) = restored(&server, &owner, corrupt).await;
    assert_eq!(state, State::Failed, "{output}");
    let summary = server.ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(summary, format!("step \"Check backup {corrupt}\" failed"));
    assert!(!output.contains("stopped"), "{output}");
    assert_eq!(show("notes.service", "MainPID"), pid);
    assert_eq!(show("notes.service", "ActiveEnterTimestamp"), since);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(listed(&server, &owner).await.len(), 3, "no copy was kept");

    // A backup whose service then fails its health check: the job puts the
    // previous database back and starts the unit again.
    sql(&db, "INSERT INTO notes (body) VALUES ('poison');");
    let poisoned = back_up(&server, &owner).await;
    sql(&db, "DELETE FROM notes WHERE body = 'poison';");
    let (job, state, output) = restored(&server, &owner, &poisoned).await;
    assert_eq!(state, State::Failed, "{output}");
    let summary = server.ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(
        summary,
        "step \"Health check\" failed; the recovery steps succeeded"
    );
    assert!(output.contains("the previous database is back"), "{output}");
    assert_eq!(show("notes.service", "ActiveState"), "active");
    assert_eq!(notes().await, "first");
    let actions: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_events WHERE job_id = ? ORDER BY id")
            .bind(job)
            .fetch_all(&server.ctx.db)
            .await
            .unwrap();
    let actions: Vec<&str> = actions.iter().map(|(a,)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "job.request",
            "job.start",
            "database.restore",
            "database.put_back",
            "job.end"
        ]
    );
    let shown = server.ctx.jobs.job(job).await.unwrap();
    let titles: Vec<&str> = shown.steps.iter().map(|s| s.title.as_str()).collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Put the previous database back (notes-")),
        "{titles:?}"
    );
}

/// Without systemd: the page lists the backups newest first with their
/// size and time and a Restore button per backup that asks first (the
/// server's confirmation page, as without JavaScript); the API refuses a
/// name that is not one of the sweep's backups (400, denied row), a role
/// below owner (403) and a sweep that makes no backups (404).
#[tokio::test]
async fn the_page_offers_each_backup_and_asks_before_restoring() {
    let dir = tempfile::tempdir().unwrap();
    let (db, server) = unserved_notes(
        dir.path(),
        r#"environment = "production""#,
        "\n[[app.sweep]]\nname = \"tidy\"\nkind = \"command\"\nrun = [\"true\"]\n",
    )
    .await;
    let owner = server.token("ben", Role::Owner).await;
    let older = back_up(&server, &owner).await;
    sql(&db, "INSERT INTO notes (body) VALUES ('second');");
    let newer = back_up(&server, &owner).await;
    assert!(newer > older);

    let (cookie, csrf) = server.session("ben", Role::Owner).await;
    let page = server
        .browse("/apps/notes", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Backups of db-backup"), "{page}");
    let (at_newer, at_older) = (
        page.find(&format!("<code>{newer}</code>")).unwrap(),
        page.find(&format!("<code>{older}</code>")).unwrap(),
    );
    assert!(at_newer < at_older, "newest first");
    assert!(page.contains(" kB</td>"), "{page}");
    let ask = format!("Restore the database of notes (production) from backup {older} (");
    assert!(page.contains(&ask), "{page}");

    // The button's form, as a browser without JavaScript sends it: the
    // server answers with the question; nothing runs until "yes".
    let form = [
        ("csrf", csrf.as_str()),
        ("backup", older.as_str()),
        ("ask", "Restore it?"),
    ];
    let res = client()
        .post(server.at("/apps/notes/sweeps/db-backup/restore"))
        .header("cookie", &cookie)
        .header("origin", &server.url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let confirm = res.text().await.unwrap();
    assert!(confirm.contains("Restore it?"), "{confirm}");
    assert!(
        confirm.contains(&format!(r#"name="backup" value="{older}""#)),
        "{confirm}"
    );
    let jobs = server.job_count().await;
    let mut yes = form.to_vec();
    yes.push(("confirmed", "yes"));
    let res = client()
        .post(server.at("/apps/notes/sweeps/db-backup/restore"))
        .header("cookie", &cookie)
        .header("origin", &server.url)
        .form(&yes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(server.job_count().await, jobs + 1);
    let to = res.headers()["location"].to_str().unwrap();
    let job: i64 = to.trim_start_matches("/jobs/").parse().unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert_eq!(notes_in(&db), "first");

    // Refusals: nothing queued.
    let jobs = server.job_count().await;
    let admin = server.token("ada", Role::Admin).await;
    for (token, sweep, backup, status, says) in [
        (
            &owner,
            "db-backup",
            "../notes.db",
            400,
            "is not one of the backups",
        ),
        (
            &owner,
            "db-backup",
            "notes-20200101T000000000Z.db",
            400,
            "is not one of the backups",
        ),
        (
            &admin,
            "db-backup",
            older.as_str(),
            403,
            "restore needs the owner role",
        ),
        (
            &owner,
            "tidy",
            older.as_str(),
            404,
            "makes no database backups",
        ),
        (&owner, "nope", older.as_str(), 404, "no sweep named"),
    ] {
        let res = client()
            .post(server.at(&format!("/api/apps/notes/sweeps/{sweep}/restore")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "backup": backup }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{backup}");
        let error = json(res).await["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{error}");
    }
    assert_eq!(server.job_count().await, jobs);
    let denied: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, detail FROM audit_events WHERE outcome = 'denied' ORDER BY id",
    )
    .fetch_all(&server.ctx.db)
    .await
    .unwrap();
    let restores: Vec<&(String, String)> = denied.iter().filter(|(a, _)| a == "restore").collect();
    assert_eq!(restores.len(), 3, "{denied:?}");
    assert!(restores[0].1.contains("../notes.db"), "{denied:?}");
}

/// `approval = { restore = "owner" }`: an owner's Restore waits, naming the
/// backup, with the database untouched; an admin cannot approve it (the
/// role is owner), another owner can, and that backup goes back.
#[tokio::test]
async fn a_restore_that_needs_approval_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, server) = unserved_notes(dir.path(), r#"approval = { restore = "owner" }"#, "").await;
    let notes = || notes_in(&db);
    let ben = server.token("ben", Role::Owner).await;
    let older = back_up(&server, &ben).await;
    sql(&db, "INSERT INTO notes (body) VALUES ('second');");

    let res = restore(&server, &ben, &older).await;
    assert_eq!(res.status(), 202);
    let job = json(res).await["job"].as_i64().unwrap();
    let waiting = server.ctx.jobs.job(job).await.unwrap();
    assert_eq!(waiting.state, State::AwaitingApproval);
    assert_eq!(waiting.target, format!("db-backup {older}"));
    assert_eq!(notes(), "first,second");

    let approve = |token: String| {
        client()
            .post(server.at(&format!("/api/jobs/{job}/approve")))
            .bearer_auth(token)
            .json(&serde_json::json!({"reason": "the drill"}))
            .send()
    };
    let admin = server.token("ada", Role::Admin).await;
    assert_eq!(approve(admin).await.unwrap().status(), 403);
    assert_eq!(notes(), "first,second");
    let olivia = server.token("olivia", Role::Owner).await;
    assert_eq!(approve(olivia).await.unwrap().status(), 200);
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert_eq!(notes(), "first");
}
