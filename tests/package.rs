//! The Debian package, installed the way the README installs it: `dpkg -i`
//! inside the systemd sandbox, the shipped `opsdeck.service` started by a
//! real systemd, `/healthz` answered, and the shipped permissions — the
//! polkit rule (with a real D-Bus and polkitd), then the sudoers file with
//! its drop-in — letting opsdeck restart exactly the configured units,
//! through opsdeck's own jobs under the unit's hardening, and not another.
//!
//! dpkg writes only into overlays of `/usr`, `/etc` and `/var/lib` mounted in
//! the sandbox's private mount namespace: the host is left as it was.

mod support;

use serde_json::Value;
use support::cli::job_end;
use support::free_port;
use support::package::{Installed, installed, owner_token, service_journal, wait_for_health};
use support::sandbox::Sandbox;

const UNIT: &str = "[Service]\nExecStart=/bin/sleep infinity\n";

#[tokio::test]
async fn the_deb_installs_and_runs_under_the_shipped_unit_with_exactly_the_shipped_permissions() {
    let Some(Installed { work, deb, sandbox }) = installed() else {
        return;
    };
    // The units the shipped examples name, and one they do not.
    for unit in ["rfc-app.service", "wppackages.service", "other.service"] {
        sandbox.install_unit(unit, UNIT);
        sandbox.run_ok(&["systemctl", "start", unit]);
    }

    // README "Install on a host", step by step.
    let id = sandbox.run_ok(&["id", "opsdeck"]);
    assert!(id.contains("systemd-journal"), "{id}");
    sandbox.start_bus_and_polkit();
    // The app's work tree, the opsdeck user's, but not in the shipped unit's
    // ReadWritePaths (the README's troubleshooting table has this row).
    sandbox.run_ok(&["install", "-d", "-o", "opsdeck", "/var/lib/rfc-app"]);
    let port = free_port();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "/var/lib/opsdeck"

[auth]
gitea_url = "https://git.example.org/"
client_id = "opsdeck"
client_secret_file = "/etc/opsdeck/client_secret"

[[app]]
name = "rfc-app"
repo = "/var/lib/rfc-app"
units = ["rfc-app.service"]

[[app.action]]
name = "restart"
run = ["/usr/bin/systemctl", "restart", "rfc-app.service"]

[[app.action]]
name = "restart-other"
run = ["/usr/bin/systemctl", "restart", "other.service"]

[[app.action]]
name = "sudo-restart"
run = ["sudo", "-n", "/usr/bin/systemctl", "restart", "rfc-app.service"]

[[app.action]]
name = "sudo-restart-other"
run = ["sudo", "-n", "/usr/bin/systemctl", "restart", "other.service"]
"#
    );
    support::package::install_config(&sandbox, work.path(), &config);

    // The README's "Store the client secret" (the editor's save is a printf).
    sandbox.run_ok(&[
        "install",
        "-d",
        "-m",
        "0750",
        "-o",
        "root",
        "-g",
        "opsdeck",
        "/etc/opsdeck",
    ]);
    sandbox.run_ok(&[
        "install",
        "-m",
        "0640",
        "-o",
        "root",
        "-g",
        "opsdeck",
        "/dev/null",
        "/etc/opsdeck/client_secret",
    ]);
    sandbox.run_ok(&[
        "sh",
        "-c",
        "printf 's3cret\\n' > /etc/opsdeck/client_secret",
    ]);

    // `opsdeck check` finds the missing polkit rule before anyone clicks.
    let check = |sandbox: &Sandbox| {
        let out = sandbox.run(&[
            "runuser",
            "-u",
            "opsdeck",
            "--",
            "opsdeck",
            "check",
            "--config",
            "/etc/opsdeck/opsdeck.toml",
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warnings = check(&sandbox);
    assert!(
        warnings.contains("opsdeck may not restart rfc-app.service")
            && warnings.contains("50-opsdeck.rules"),
        "{warnings}"
    );
    sandbox.run_ok(&[
        "install",
        "-m",
        "0644",
        "/usr/share/doc/opsdeck/examples/polkit/50-opsdeck.rules",
        "/etc/polkit-1/rules.d/50-opsdeck.rules",
    ]);
    // polkitd reloads rules.d on its own, a moment after the file lands
    // (inotify); a loaded machine can take a few seconds.
    let mut warnings = check(&sandbox);
    for _ in 0..40 {
        if !warnings.contains("may not restart") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        warnings = check(&sandbox);
    }
    assert!(!warnings.contains("may not restart"), "{warnings}");
    assert!(
        !warnings.contains("client_secret"),
        "the secret stored as the README says is readable by opsdeck and nobody else: {warnings}"
    );

    let started = sandbox.run(&["systemctl", "enable", "--now", "opsdeck"]);
    assert!(
        started.status.success(),
        "opsdeck.service did not start:\n{}",
        service_journal(&sandbox)
    );

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let health = wait_for_health(&http, &base, &sandbox).await;
    assert_eq!(health["database"], "ok", "{health}");
    let user = sandbox.systemctl(&["show", "opsdeck", "-p", "User", "--value"]);
    assert_eq!(user.trim(), "opsdeck");
    let data = sandbox.run_ok(&["stat", "-c", "%U %a", "/var/lib/opsdeck"]);
    assert_eq!(data.trim(), "opsdeck 700");
    // Under the unit's ProtectSystem=strict the work tree is read-only, and
    // the check the unit runs first says so in the journal.
    let journal = service_journal(&sandbox);
    assert!(
        journal.contains("/var/lib/rfc-app is not writable by opsdeck")
            && journal.contains("ReadWritePaths"),
        "{journal}"
    );

    let token = &owner_token(&sandbox, "package-test");

    // polkit: the fully hardened unit restarts exactly the listed units.
    restarts(&sandbox, &http, &base, token, "restart", "rfc-app.service").await;
    refused(
        &sandbox,
        &http,
        &base,
        token,
        "restart-other",
        "other.service",
        // polkit says no: the rule does not cover it, and no one is there
        // to type a password.
        "Interactive authentication required",
    )
    .await;
    // Hardened, the unit cannot gain privileges: sudo is stopped outright.
    refused(
        &sandbox,
        &http,
        &base,
        token,
        "sudo-restart",
        "rfc-app.service",
        "no new privileges",
    )
    .await;

    // The sudoers alternative: the file and the drop-in the README names.
    sandbox.run_ok(&[
        "install",
        "-m",
        "0440",
        "/usr/share/doc/opsdeck/examples/sudoers.d/opsdeck",
        "/etc/sudoers.d/opsdeck",
    ]);
    sandbox.run_ok(&["visudo", "-cf", "/etc/sudoers.d/opsdeck"]);
    // A host puts the drop-in in /etc/systemd/system/opsdeck.service.d; the
    // sandbox's systemd reads /run/systemd/system instead of the host's /etc.
    sandbox.run_ok(&["mkdir", "-p", "/run/systemd/system/opsdeck.service.d"]);
    sandbox.run_ok(&[
        "cp",
        "/usr/share/doc/opsdeck/examples/sudo.conf",
        "/run/systemd/system/opsdeck.service.d/sudo.conf",
    ]);
    sandbox.run_ok(&["rm", "/etc/polkit-1/rules.d/50-opsdeck.rules"]);
    sandbox.run_ok(&["systemctl", "daemon-reload"]);
    sandbox.run_ok(&["systemctl", "restart", "opsdeck"]);
    wait_for_health(&http, &base, &sandbox).await;
    restarts(
        &sandbox,
        &http,
        &base,
        token,
        "sudo-restart",
        "rfc-app.service",
    )
    .await;
    refused(
        &sandbox,
        &http,
        &base,
        token,
        "sudo-restart-other",
        "other.service",
        "password is required",
    )
    .await;

    // The README's backup of opsdeck's own database, taken while it runs.
    let as_opsdeck =
        |command: &str| sandbox.run_ok(&["runuser", "-u", "opsdeck", "--", "sh", "-c", command]);
    as_opsdeck(
        "sqlite3 /var/lib/opsdeck/opsdeck.db \".backup /var/lib/opsdeck/backup-$(date +%F).db\"",
    );
    let backup = as_opsdeck(
        "sqlite3 /var/lib/opsdeck/backup-$(date +%F).db 'PRAGMA integrity_check' \
         'SELECT name FROM api_tokens'",
    );
    assert_eq!(backup.trim(), "ok\npackage-test", "{backup}");

    // The README's export, verified offline.
    as_opsdeck(
        "opsdeck audit export --config /etc/opsdeck/opsdeck.toml --format jsonl \
         > /var/lib/opsdeck/audit.jsonl",
    );
    let verified = sandbox.run_ok(&[
        "opsdeck",
        "audit",
        "verify",
        "--file",
        "/var/lib/opsdeck/audit.jsonl",
    ]);
    assert!(verified.starts_with("verified "), "{verified}");

    // The README's upgrade: the package again over the running one, then a
    // restart; the database, its tokens and the config are kept.
    let config_before = sandbox.run_ok(&["sha256sum", "/etc/opsdeck/opsdeck.toml"]);
    sandbox.run_ok(&["dpkg", "--log=/dev/null", "-i", &deb]);
    sandbox.run_ok(&["systemctl", "restart", "opsdeck"]);
    wait_for_health(&http, &base, &sandbox).await;
    assert_eq!(
        sandbox.run_ok(&["sha256sum", "/etc/opsdeck/opsdeck.toml"]),
        config_before
    );
    let apps = http
        .get(format!("{base}/api/apps"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        apps.status(),
        200,
        "the token made before the upgrade still works"
    );

    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}

/// The action restarts `unit` (its main process changes).
async fn restarts(
    sandbox: &Sandbox,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    action: &str,
    unit: &str,
) {
    let before = main_pid(sandbox, unit);
    let (job, output) = run_action(http, base, token, action).await;
    assert_eq!(job["state"], "succeeded", "{action}: {job}\n{output}");
    assert_ne!(main_pid(sandbox, unit), before, "{action} restarted {unit}");
}

/// The action fails saying `why`, and `unit` keeps running untouched.
async fn refused(
    sandbox: &Sandbox,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    action: &str,
    unit: &str,
    why: &str,
) {
    let before = main_pid(sandbox, unit);
    let (job, output) = run_action(http, base, token, action).await;
    assert_eq!(job["state"], "failed", "{action}: {job}\n{output}");
    assert!(output.contains(why), "{action}: {job}\n{output}");
    assert_eq!(
        main_pid(sandbox, unit),
        before,
        "{action} left {unit} alone"
    );
}

fn main_pid(sandbox: &Sandbox, unit: &str) -> String {
    let pid = sandbox.systemctl(&["show", unit, "-p", "MainPID", "--value"]);
    assert_ne!(pid.trim(), "0", "{unit} is not running");
    pid.trim().to_string()
}

/// Runs an action through the API; returns its job once it ended, and the
/// job's output.
async fn run_action(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    action: &str,
) -> (Value, String) {
    let started: Value = http
        .post(format!("{base}/api/apps/rfc-app/actions/{action}/run"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["job"]
        .as_i64()
        .unwrap_or_else(|| panic!("{started}"));
    job_end(base, token, id).await;
    let job = support::cli::job(base, token, id).await;
    (job, support::cli::job_output(base, token, id).await)
}
