//! The CommunityRule runbook (`shared/runbooks/communityrule-ops-runbook.txt`)
//! operated through `deploy/examples/communityrule.toml` under the installed
//! package, the shipped unit, D-Bus and polkit (README "The five
//! runbooks"). Cloudron is a stand-in of the test's own: a small HTTP
//! server holding the apps (their image tag, applied migrations, backups,
//! environment) that serves each app's `/api/health`, and a `cloudron` CLI
//! on opsdeck's PATH that talks to it (`update --image`, `exec`, `logs`,
//! `backup list`, `clone`, `uninstall`, and `env set` through
//! `SESSION_SECRET`'s `store`). The registry is a directory: a tag is
//! pushed when a file names it, holding the image's number of migrations.
//! The example is adapted in the Cloudron host's address and opsdeck's
//! port only.

mod support;

use serde_json::json;
use support::free_port;
use support::package::installed;
use support::runbook::{example, start, verify_audit_chain};
use support::sandbox::Sandbox;

const REGISTRY: &str = "/var/lib/cloudron-standin/registry";

/// The stand-in Cloudron: `POST /<command>` with the CLI's arguments (JSON)
/// answers `{"out", "code"}`; `GET /<location>/api/health` answers as the
/// app's container would; `GET /_env/<location>` shows the test the app's
/// environment as Cloudron keeps it.
const SERVER: &str = r#"import http.server, json, pathlib, sys
registry = pathlib.Path(sys.argv[1])
image = "git.medlab.host/communityrule/community-rule:"
apps = {"communityrule.info": {"image": image + "0.1.8", "migrations": 2, "env": {}, "log": []}}
backups = {"2026-12-01-030000": ("0.1.8", 2), "2026-11-01-030000": ("0.1.7", 1)}
def tag(image): return image.rsplit(":", 1)[1]
def start(app, image):
    pushed = registry / image
    if not pushed.exists():
        return 1, "image pull error: %s not found\n" % image
    app["image"] = image
    app["migrations"] = max(app["migrations"], int(pushed.read_text()))
    app["log"].append("prisma migrate deploy: %d migrations applied" % app["migrations"])
    app["log"].append("Listening on port 3000")
    return 0, "App %s is updated to %s\n" % (a["app"], image)
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body):
        body = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        location, _, path = self.path.strip("/").partition("/")
        if location == "_env" and path in apps:
            return self.reply(200, json.dumps(apps[path]["env"]))
        app = apps.get(location)
        if app is None or path != "api/health":
            return self.reply(404, "no such app\n")
        self.reply(200, json.dumps({"ok": True, "database": "connected",
            "image": tag(app["image"]), "migrations": app["migrations"]},
            separators=(",", ":")))
    def do_POST(self):
        global a
        a = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        command = self.path.strip("/")
        app = apps.get(a.get("app"))
        code, out = 0, ""
        if command == "backup-list":
            out = "".join(b + "\n" for b in sorted(backups, reverse=True))
        elif command == "clone":
            if a["backup"] not in backups:
                code, out = 1, "no backup %s\n" % a["backup"]
            else:
                tagged, migrations = backups[a["backup"]]
                apps[a["location"]] = {"image": image + tagged, "migrations": migrations, "env": {}, "log": []}
                out = "App restored from %s to %s\n" % (a["backup"], a["location"])
        elif app is None:
            code, out = 1, "no app %s\n" % a.get("app")
        elif command == "update":
            code, out = start(app, a["image"])
        elif command == "exec" and a["argv"] == ["npm", "run", "db:deploy"]:
            want = int((registry / app["image"]).read_text())
            out = "%d migrations found; %d applied now\n" % (want, max(0, want - app["migrations"]))
            app["migrations"] = max(want, app["migrations"])
        elif command == "exec":
            out = "ran %s\n" % " ".join(a["argv"])
        elif command == "logs":
            out = "".join(l + "\n" for l in app["log"][-int(a["lines"]):])
        elif command == "env-set":
            key, _, value = a["pair"].partition("=")
            app["env"][key] = value
            app["log"].append("restarted: environment changed")
        elif command == "uninstall":
            del apps[a["app"]]
            out = "uninstalled %s\n" % a["app"]
        else:
            code, out = 2, "unknown command\n"
        self.reply(200, json.dumps({"code": code, "out": out}))
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
"#;

/// The stand-in `cloudron` CLI: the runbook's commands, sent to the server.
const CLI: &str = r#"#!/usr/bin/python3
import json, sys, urllib.request
args = sys.argv[1:]
def opt(name):
    return args[args.index(name) + 1]
if args[:2] == ["backup", "list"]:
    command, body = "backup-list", {"app": opt("--app")}
elif args[:2] == ["env", "set"]:
    command, body = "env-set", {"app": opt("--app"), "pair": args[-1]}
elif args[0] == "exec":
    command, body = "exec", {"app": opt("--app"), "argv": args[args.index("--") + 1:]}
elif args[0] == "update":
    command, body = "update", {"app": opt("--app"), "image": opt("--image")}
elif args[0] == "logs":
    command, body = "logs", {"app": opt("--app"), "lines": opt("--lines")}
elif args[0] == "clone":
    command, body = "clone", {"app": opt("--app"), "backup": opt("--backup"), "location": opt("--location")}
elif args[0] == "uninstall":
    command, body = "uninstall", {"app": opt("--app")}
else:
    sys.exit("cloudron: unknown command %s" % args)
request = urllib.request.Request("http://127.0.0.1:PORT/" + command, json.dumps(body).encode())
answer = json.load(urllib.request.urlopen(request))
sys.stdout.write(answer["out"])
sys.exit(answer["code"])
"#;

const IMAGE: &str = "git.medlab.host/communityrule/community-rule";

/// Pushes `tag` to the stand-in registry: its image has `spec` migrations.
fn push(sandbox: &Sandbox, tag: &str, spec: &str) {
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!("mkdir -p {REGISTRY}/{IMAGE} && echo {spec} > {REGISTRY}/{IMAGE}:{tag}"),
    ]);
}

/// The live app's environment as the stand-in Cloudron keeps it.
async fn environment(cloudron: u16) -> serde_json::Value {
    reqwest::get(format!(
        "http://127.0.0.1:{cloudron}/_env/communityrule.info"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

/// The app's health as Cloudron serves it.
async fn health(cloudron: u16, location: &str) -> serde_json::Value {
    reqwest::get(format!("http://127.0.0.1:{cloudron}/{location}/api/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn the_communityrule_runbook_is_operated_from_its_example_config() {
    let Some(installed) = installed() else {
        return;
    };
    let sandbox = &installed.sandbox;

    // The Cloudron host with the app installed at 0.1.8 (the runbook's
    // first-time install, not opsdeck's job), and the CLI on opsdeck's PATH.
    let cloudron = free_port();
    let dir = installed.work.path();
    std::fs::write(dir.join("server.py"), SERVER).unwrap();
    std::fs::write(
        dir.join("cloudron"),
        CLI.replace("PORT", &cloudron.to_string()),
    )
    .unwrap();
    let (server, cli) = (dir.join("server.py"), dir.join("cloudron"));
    sandbox.run_ok(&[
        "install",
        "-m",
        "0755",
        cli.to_str().unwrap(),
        "/usr/local/bin/cloudron",
    ]);
    for (tag, spec) in [("0.1.7", "1"), ("0.1.8", "2")] {
        push(sandbox, tag, spec);
    }
    sandbox.install_unit(
        "cloudron-standin.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 {} {REGISTRY} {cloudron}\n",
            server.display()
        ),
    );
    sandbox.run_ok(&["systemctl", "start", "cloudron-standin.service"]);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let live = format!("http://127.0.0.1:{cloudron}/communityrule.info/api/health");
    let drill = format!("http://127.0.0.1:{cloudron}/restore-drill.communityrule.info/api/health");
    let config = example(
        "communityrule.toml",
        &[
            ("127.0.0.1:8080", &listen),
            ("https://ops.medlab.host", &public),
            ("https://communityrule.info/api/health", &live),
            (
                "https://restore-drill.communityrule.info/api/health",
                &drill,
            ),
        ],
    );
    let deck = start(&installed, &config, port, &[]).await;
    let app = "/api/apps/communityrule";
    for _ in 0..100 {
        if health(cloudron, "communityrule.info").await["ok"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // §3.2: deploy 0.1.9 by its tag; Cloudron's start applies its migration.
    push(sandbox, "0.1.9", "3");
    deck.ok(&format!("{app}/deploy"), json!({"ref": "0.1.9"}))
        .await;
    let now = health(cloudron, "communityrule.info").await;
    assert_eq!(
        (now["image"].clone(), now["migrations"].clone()),
        (json!("0.1.9"), json!(3))
    );

    // §8 "Image pull error on update": a tag that was never pushed fails
    // the update, and the job puts 0.1.9 back by itself.
    let id = deck
        .post(&format!("{app}/deploy"), json!({"ref": "0.2.0"}))
        .await
        .unwrap();
    let (state, output) = deck.end(id).await;
    assert_eq!(state, "failed", "{output}");
    assert!(output.contains("image pull error"), "{output}");
    assert_eq!(
        health(cloudron, "communityrule.info").await["image"],
        "0.1.9"
    );

    // A ref no tag can be is refused before anything runs.
    let (status, why) = deck
        .post(&format!("{app}/deploy"), json!({"ref": "0.1.9;reboot"}))
        .await
        .expect_err("a ref with a semicolon is refused");
    assert_eq!(status, 400, "{why}");

    // §4: 0.1.10, then Rollback to the previous good tag (0.1.9, never the
    // one that failed). The database stays ahead (§4: a rollback does not
    // undo migrations).
    push(sandbox, "0.1.10", "4");
    deck.ok(&format!("{app}/deploy"), json!({"ref": "0.1.10"}))
        .await;
    assert_eq!(
        health(cloudron, "communityrule.info").await["image"],
        "0.1.10"
    );
    deck.ok(&format!("{app}/rollback"), json!({})).await;
    let now = health(cloudron, "communityrule.info").await;
    assert_eq!(
        (&now["image"], &now["migrations"]),
        (&json!("0.1.9"), &json!(4))
    );

    // §3.3 and §3.4: migrations by hand (none pending now), the seed; §8's
    // logs show the start script's migration.
    let migrated = deck.action("communityrule", "migrate", json!({})).await;
    assert!(
        migrated.contains("3 migrations found; 0 applied now"),
        "{migrated}"
    );
    let seeded = deck.action("communityrule", "seed", json!({})).await;
    assert!(
        seeded.contains("ran node prisma/seed.bundle.cjs"),
        "{seeded}"
    );
    let logs = deck.action("communityrule", "logs", json!({})).await;
    assert!(logs.contains("Listening on port 3000"), "{logs}");

    // §5, the restore drill: a backup that is not Cloudron's is refused;
    // the newest one restored beside the live app, checked, migrated,
    // removed — the live app untouched throughout.
    let (status, why) = deck
        .post(
            &format!("{app}/actions/restore-drill/run"),
            json!({"params": {"backup": "2020-01-01-000000"}}),
        )
        .await
        .expect_err("a backup Cloudron does not list is refused");
    assert_eq!(status, 400, "{why}");
    let restored = deck
        .action(
            "communityrule",
            "restore-drill",
            json!({"backup": "2026-12-01-030000"}),
        )
        .await;
    assert!(
        restored.contains("restore-drill.communityrule.info"),
        "{restored}"
    );
    let checked = deck
        .action("communityrule", "restore-drill-health", json!({}))
        .await;
    assert!(checked.contains("\"database\":\"connected\""), "{checked}");
    assert_eq!(
        health(cloudron, "restore-drill.communityrule.info").await["migrations"],
        2
    );
    let drilled = deck
        .action("communityrule", "restore-drill-migrate", json!({}))
        .await;
    assert!(
        drilled.contains("2 migrations found; 0 applied now"),
        "{drilled}"
    );
    deck.action("communityrule", "restore-drill-uninstall", json!({}))
        .await;
    assert_eq!(
        health(cloudron, "restore-drill.communityrule.info").await,
        json!(null)
    );
    let gone = deck
        .post(
            &format!("{app}/actions/restore-drill-health/run"),
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(deck.end(gone).await.0, "failed");
    assert_eq!(
        health(cloudron, "communityrule.info").await["image"],
        "0.1.9"
    );

    // §7: SESSION_SECRET made by opsdeck and handed to `cloudron env set`
    // on stdin (Cloudron restarts the app); the value shows nowhere.
    let job = deck
        .post(&format!("{app}/secrets/SESSION_SECRET/rotate"), json!({}))
        .await
        .unwrap();
    let (state, output) = deck.end(job).await;
    assert_eq!(state, "succeeded", "{output}");
    let env = environment(cloudron).await;
    let secret = env["SESSION_SECRET"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()),
        "{env}"
    );
    let logs = deck.action("communityrule", "logs", json!({})).await;
    assert!(logs.contains("restarted: environment changed"), "{logs}");
    deck.ok(&format!("{app}/secrets/SESSION_SECRET/rotate"), json!({}))
        .await;
    let again = environment(cloudron).await["SESSION_SECRET"].clone();
    assert_ne!(
        again,
        json!(secret),
        "a second rotation makes another value"
    );
    let audit = serde_json::to_string(&deck.audit().await).unwrap();
    assert!(!audit.contains(&secret) && !output.contains(&secret));

    // The audit log: its chain verifies, and each step's rows say ok — or
    // failed for the tag never pushed and the drill checked after its removal,
    // denied for the refused ref and backup.
    verify_audit_chain(sandbox);
    assert_eq!(deck.outcomes("deploy.ref", "reboot").await, ["denied"]);
    assert_eq!(
        deck.outcomes("release.create", "").await,
        ["ok", "ok", "ok", "ok"],
        "0.1.9, 0.2.0, 0.1.10 and the rollback to 0.1.9"
    );
    assert_eq!(
        deck.outcomes("action.params", "restore-drill").await,
        ["denied"]
    );
    let ends: Vec<String> = deck.outcomes("job.end", "").await;
    assert_eq!(
        ends,
        [
            "ok", "failed", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "failed", "ok",
            "ok", "ok"
        ],
        "deploy, failed deploy, deploy, rollback, migrate, seed, logs, drill ×4, the drill's \
         health after it, rotation, logs, rotation"
    );
    assert_eq!(deck.outcomes("secret.store", "").await, ["ok", "ok"]);
    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}
