//! The WP Packages runbook (`shared/runbooks/wppackages-operations.txt`)
//! operated through `deploy/examples/wppackages.toml` under the installed
//! package, the shipped unit, D-Bus and polkit (README "The five
//! runbooks"). The app is a stand-in of the test's own shaped like the
//! system: a `wppackages` program (Python, built by `make build` as the Go
//! binary is) that serves `/healthz`, keeps its builds under
//! `storage/builds/<build-id>` with `storage/current` pointing at the
//! promoted one, records them in its SQLite database, and answers the
//! runbook's commands (`pipeline`, `deploy <id>`, `deploy --rollback`,
//! `migrate`, …). The example is adapted in paths (/srv → /var/lib, inside
//! the sandbox's overlay) and ports, and in one more place, said where it
//! is: the pipeline's schedule.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::free_port;
use support::package::installed;
use support::runbook::{Deck, example, start, verify_audit_chain};
use support::sandbox::Sandbox;

const ROOT: &str = "/var/lib/wppackages";

/// The stand-in `wppackages`. A pipeline waits while `storage/hold`
/// exists, so the test can keep one running across a scheduled minute.
const WPPACKAGES: &str = r#"#!/usr/bin/python3
import http.server, os, pathlib, sqlite3, sys, time
args = sys.argv[1:]
def flag(name, default=None):
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    if name in args and args.index(name) + 1 < len(args):
        return args[args.index(name) + 1]
    return default
db_path = flag("--db", os.environ.get("DB_PATH"))
storage = pathlib.Path(db_path).parent
builds = storage / "builds"
here = pathlib.Path(__file__).resolve().parent.parent
def db():
    d = sqlite3.connect(db_path)
    d.execute("PRAGMA journal_mode=WAL")
    return d
def current():
    link = storage / "current"
    return os.readlink(link).split("/")[-1] if link.is_symlink() else "none"
def promote(build):
    if not (builds / build / "packages.json").is_file():
        sys.exit("build %s does not validate: no packages.json" % build)
    tmp = storage / "current.tmp"
    if tmp.is_symlink(): tmp.unlink()
    os.symlink("builds/" + build, tmp)
    os.replace(tmp, storage / "current")
    d = db(); d.execute("INSERT INTO promotions (build) VALUES (?)", (build,)); d.commit()
    print("promoted build %s" % build)
cmd = args[0]
if cmd == "serve":
    port = int(flag("--addr").rsplit(":", 1)[1])
    version = (here / "VERSION").read_text().strip()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = ("ok version=%s build=%s\n" % (version, current())).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
elif cmd == "migrate":
    d = db()
    d.execute("CREATE TABLE IF NOT EXISTS builds (id TEXT PRIMARY KEY, source TEXT)")
    d.execute("CREATE TABLE IF NOT EXISTS promotions (n INTEGER PRIMARY KEY, build TEXT)")
    d.execute("CREATE TABLE IF NOT EXISTS packages (name TEXT PRIMARY KEY, installs INTEGER)")
    d.commit()
    print("migrations applied")
elif cmd == "pipeline":
    while (storage / "hold").exists():
        time.sleep(0.1)
    d = db()
    stamp = time.time()
    while True:
        build = time.strftime("%Y%m%d-%H%M%S", time.gmtime(stamp))
        if not (builds / build).exists(): break
        stamp += 1
    (builds / build).mkdir(parents=True)
    (builds / build / "packages.json").write_text('{"build": "%s"}\n' % build)
    source = flag("--discover-source", "svn")
    d.execute("INSERT INTO builds VALUES (?, ?)", (build, source)); d.commit()
    print("discover (%s) → update → build %s → deploy" % (source, build))
    promote(build)
elif cmd == "builds":
    for b in sorted((p.name for p in builds.iterdir()), reverse=True) if builds.is_dir() else []:
        print(b)
elif cmd == "deploy":
    if "--rollback" in args:
        rows = [r[0] for r in db().execute("SELECT build FROM promotions ORDER BY n DESC")]
        now = current()
        before = [b for b in rows if b != now]
        if not before: sys.exit("no build to roll back to")
        promote(before[0])
    elif len(args) > 1 and not args[1].startswith("-"):
        promote(args[1])
    else:
        print("deploy: nothing to do")
else:
    print("%s: done" % " ".join(args))
"#;

const MAKEFILE: &str =
    "build:\n\tmkdir -p bin\n\tcp wppackages.py bin/wppackages\n\tchmod 755 bin/wppackages\n";

fn as_opsdeck(sandbox: &Sandbox, script: &str) -> String {
    sandbox.run_ok(&[
        "runuser",
        "-u",
        "opsdeck",
        "--",
        "sh",
        "-c",
        &format!(
            "set -e; export GIT_AUTHOR_NAME=Ben GIT_AUTHOR_EMAIL=ben@example.org \
             GIT_COMMITTER_NAME=Ben GIT_COMMITTER_EMAIL=ben@example.org; cd {ROOT}; {script}"
        ),
    ])
}

/// Commits `version` in the author's clone and pushes it.
fn push(sandbox: &Sandbox, version: &str) {
    as_opsdeck(
        sandbox,
        &format!(
            "cd author && echo {version} > VERSION && git commit -qam {version} && git push -q origin main"
        ),
    );
}

/// What the app answers: `(version, build)`.
async fn answer(port: u16) -> (String, String) {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| {
        body.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned()
    };
    (field("version="), field("build="))
}

/// The builds the app has, newest first, as the promote button offers them.
fn builds(sandbox: &Sandbox) -> Vec<String> {
    let out = sandbox.run_ok(&["ls", "-1r", &format!("{ROOT}/shared/storage/builds")]);
    out.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn the_wppackages_runbook_is_operated_from_its_example_config() {
    let Some(installed) = installed() else {
        return;
    };
    let sandbox = &installed.sandbox;

    // What provisioning made (the runbook's Ansible, not opsdeck's job):
    // the repository, the shared env file and storage, the service's unit.
    sandbox.run_ok(&["install", "-d", "-o", "opsdeck", "-g", "opsdeck", ROOT]);
    let files = [
        ("VERSION", "v1\n"),
        ("Makefile", MAKEFILE),
        ("wppackages.py", WPPACKAGES),
    ]
    .iter()
    .map(|(name, text)| format!("cat > {name} <<'EOF'\n{text}EOF\n"))
    .collect::<String>();
    let app_port = free_port();
    as_opsdeck(
        sandbox,
        &format!(
            "git init -q --bare -b main origin.git; git init -q -b main author; cd author
{files}
git add -A; git commit -qm v1; git remote add origin ../origin.git; git push -q origin main
cd ..; git clone -q origin.git repo
mkdir -p shared/storage
printf 'DB_PATH={ROOT}/shared/storage/wppackages.db\\nR2_SECRET_ACCESS_KEY=r2-secret-value-1\\nR2_ACCESS_KEY_ID=r2-id\\nDISCORD_WEBHOOK_URL=https://discord.example/hook\\n' > shared/.env
chmod 0640 shared/.env"
        ),
    );
    sandbox.install_unit(
        "wppackages.service",
        &format!(
            "[Service]\nUser=opsdeck\nEnvironmentFile={ROOT}/shared/.env\n\
             WorkingDirectory={ROOT}/current\n\
             ExecStart={ROOT}/current/bin/wppackages serve --addr 127.0.0.1:{app_port}\n"
        ),
    );

    // The example, with its paths and ports; and the pipeline every minute
    // instead of every fifth, so the test waits one minute, not five.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let health = format!("127.0.0.1:{app_port}");
    assert!(example("wppackages.toml", &[]).contains("schedule = \"*/5 * * * *\""));
    let config = example(
        "wppackages.toml",
        &[
            ("127.0.0.1:8080", &listen),
            ("https://ops.wenpai.net", &public),
            ("127.0.0.1:8081", &health),
            ("/srv/wppackages", ROOT),
            ("schedule = \"*/5 * * * *\"", "schedule = \"* * * * *\""),
        ],
    );
    let deck = start(&installed, &config, port, &[ROOT]).await;
    let app = "/api/apps/wppackages";

    // "Deploy (code only)": releases, built by `make build`, migrated,
    // switched; Rollback switches back; main again.
    deck.ok(&format!("{app}/deploy"), json!({"ref": "main"}))
        .await;
    assert_eq!(answer(app_port).await, ("v1".into(), "none".into()));
    push(sandbox, "v2");
    deck.ok(&format!("{app}/deploy"), json!({"ref": "main"}))
        .await;
    assert_eq!(answer(app_port).await.0, "v2");
    deck.ok(&format!("{app}/rollback"), json!({})).await;
    assert_eq!(answer(app_port).await.0, "v1");
    deck.ok(&format!("{app}/deploy"), json!({"ref": "main"}))
        .await;
    assert_eq!(answer(app_port).await.0, "v2");
    let releases = sandbox.run_ok(&["ls", &format!("{ROOT}/releases")]);
    assert_eq!(releases.lines().count(), 3, "{releases}");

    // "Scheduled Tasks": the pipeline runs on its schedule as the
    // scheduler; while a run still goes, the next minute is skipped (and
    // audited), never queued behind it.
    let hold = format!("{ROOT}/shared/storage/hold");
    as_opsdeck(sandbox, &format!("touch {hold}"));
    let started = Instant::now();
    let first = scheduled_pipeline(&deck, Duration::from_secs(75)).await;
    let skipped = loop {
        let skips: Vec<_> = deck
            .audit()
            .await
            .into_iter()
            .filter(|r| r["action"] == "sweep.skip")
            .collect();
        if let Some(skip) = skips.first() {
            break skip.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "no minute was skipped while the pipeline ran"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(skipped["actor"], "system:scheduler", "{skipped}");
    assert_eq!(skipped["outcome"], "failed", "{skipped}");
    assert!(
        skipped["detail"]
            .to_string()
            .contains("still queued or running"),
        "{skipped}"
    );
    assert_eq!(
        scheduled_pipelines(&deck).await,
        vec![first],
        "the skipped minute queued nothing"
    );
    as_opsdeck(sandbox, &format!("rm {hold}"));
    let (state, output) = deck.end(first).await;
    assert_eq!(state, "succeeded", "{output}");
    assert!(
        !output.contains("r2-secret-value-1"),
        "the env file's values are masked: {output}"
    );
    let scheduled_build = builds(sandbox)[0].clone();
    assert_eq!(answer(app_port).await.1, scheduled_build);

    // Run now, by hand, from the curated lists: a second build, promoted.
    let manual = deck
        .ok(
            &format!("{app}/sweeps/pipeline/run"),
            json!({"dry_run": false, "params": {"source": "config"}}),
        )
        .await;
    assert!(manual.contains("discover (config)"), "{manual}");
    let newest = builds(sandbox)[0].clone();
    assert_ne!(newest, scheduled_build);
    assert_eq!(answer(app_port).await.1, newest);

    // "Bad promotion": promote the older build by its ID (a choice of the
    // app's own list), then `deploy --rollback` to the one before; a build
    // that is not in the list is refused before anything runs.
    deck.action(
        "wppackages",
        "promote-build",
        json!({"build": scheduled_build}),
    )
    .await;
    assert_eq!(answer(app_port).await.1, scheduled_build);
    let refused = deck
        .post(
            &format!("{app}/actions/promote-build/run"),
            json!({"params": {"build": "20990101-000000"}}),
        )
        .await;
    let (status, why) = refused.expect_err("an unknown build is refused");
    assert_eq!(status, 400, "{why}");
    assert!(why.contains("20990101-000000"), "{why}");
    assert_eq!(answer(app_port).await.1, scheduled_build);
    deck.action("wppackages", "rollback-build", json!({})).await;
    assert_eq!(answer(app_port).await.1, newest);

    // "SQLite Operations → Backup": a checked copy of the live database
    // that holds the pipeline's builds; then its Restore.
    deck.ok(
        &format!("{app}/sweeps/db-backup/run"),
        json!({"dry_run": false}),
    )
    .await;
    let sweeps = deck.get(&format!("{app}/sweeps")).await;
    let backups = sweeps
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "db-backup"))
        .map(|s| s["restore"]["backups"].clone())
        .unwrap_or_else(|| panic!("{sweeps}"));
    let backup = backups[0]["name"].as_str().unwrap().to_owned();
    let copy = sandbox.run_ok(&[
        "sqlite3",
        &format!("{ROOT}/shared/storage/backups/{backup}"),
        "PRAGMA integrity_check",
        "SELECT count(*) FROM builds",
    ]);
    assert_eq!(copy, "ok\n2\n");
    deck.ok(
        &format!("{app}/sweeps/db-backup/restore"),
        json!({"backup": backup}),
    )
    .await;
    assert_eq!(answer(app_port).await.1, newest);

    // The audit log: its chain verifies, and each step's rows say ok, or
    // denied for the refused build.
    verify_audit_chain(sandbox);
    assert_eq!(deck.outcomes("release.create", "").await.len(), 4);
    assert_eq!(
        deck.outcomes("action.params", "promote-build").await,
        ["denied"]
    );
    for (what, about) in [
        ("job.request", "promote-build"),
        ("job.request", "rollback-build"),
        ("job.request", "db-backup"),
        ("job.request", "rollback"),
    ] {
        let outcomes = deck.outcomes(what, about).await;
        assert!(
            !outcomes.is_empty() && outcomes.iter().all(|o| o == "ok"),
            "{what} {about}: {outcomes:?}"
        );
    }
    let ends = deck.outcomes("job.end", "").await;
    assert!(
        ends.len() >= 10 && ends.iter().all(|o| o == "ok"),
        "every job ended ok: {ends:?}"
    );
    assert_eq!(deck.outcomes("sweep.skip", "pipeline").await, ["failed"]);
    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}

/// The pipeline jobs the scheduler started, in order.
async fn scheduled_pipelines(deck: &Deck) -> Vec<i64> {
    deck.audit()
        .await
        .iter()
        .filter(|r| {
            r["action"] == "job.request"
                && r["actor"] == "system:scheduler"
                && r["detail"].to_string().contains("pipeline")
        })
        .filter_map(|r| r["job_id"].as_i64())
        .collect()
}

/// Waits for the scheduler's first pipeline job.
async fn scheduled_pipeline(deck: &Deck, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(first) = scheduled_pipelines(deck).await.first() {
            return *first;
        }
        assert!(Instant::now() < deadline, "the scheduler ran no pipeline");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
