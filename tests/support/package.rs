//! The Debian package in the systemd sandbox: building it from this test
//! run's binary, installing it into overlays, waiting for the service.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::sandbox::Sandbox;

/// Builds the package from the binary this test run built, as `cargo deb`
/// does for a release (`--no-build --profile dev`: the test does not pay for
/// a release build; the package's contents are the same files).
fn build_deb(dir: &Path) -> Option<PathBuf> {
    let found = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and cargo-deb is missing: cargo install cargo-deb --locked"
        );
        eprintln!("skipped: cargo-deb is not installed");
        return None;
    }
    let deb = dir.join("opsdeck.deb");
    let out = Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--strip",
            "--fast",
            "-q",
        ])
        .arg("--output")
        .arg(&deb)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo deb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(deb)
}

/// Mounts writable overlays over the directories dpkg and the service write
/// to, inside the sandbox only. `/var/lib/systemd` (the sandbox's own tmpfs)
/// is put back on top of the `/var/lib` overlay.
fn overlay_system_dirs(sandbox: &Sandbox) {
    let base = sandbox.dir().join("overlay");
    let mut script = String::from("set -e\n");
    let keep = base.join("var-lib-systemd");
    script += &format!(
        "mkdir -p {k}\nmount --bind /var/lib/systemd {k}\n",
        k = keep.display()
    );
    for dir in ["/usr", "/etc", "/var/lib"] {
        let name = dir.trim_start_matches('/').replace('/', "-");
        let (upper, work) = (base.join(&name), base.join(format!("{name}.work")));
        script += &format!(
            "mkdir -p {u} {w}\nmount -t overlay overlay -o lowerdir={dir},upperdir={u},workdir={w} {dir}\n",
            u = upper.display(),
            w = work.display()
        );
    }
    script += &format!(
        "mount --bind {k} /var/lib/systemd\numount -l {k}\n",
        k = keep.display()
    );
    sandbox.run_ok(&["sh", "-c", &script]);
}

pub async fn wait_for_health(http: &reqwest::Client, base: &str, sandbox: &Sandbox) -> Value {
    for _ in 0..600 {
        if let Ok(res) = http.get(format!("{base}/healthz")).send().await {
            return res.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "opsdeck.service never answered; its journal:\n{}",
        service_journal(sandbox)
    );
}

pub fn service_journal(sandbox: &Sandbox) -> String {
    let journal = sandbox.run(&["journalctl", "--no-pager", "-o", "cat", "-u", "opsdeck"]);
    String::from_utf8_lossy(&journal.stdout).into_owned()
}

/// An owner's API token, made as the service's user so the database stays
/// its own.
pub fn owner_token(sandbox: &Sandbox, name: &str) -> String {
    let token = sandbox.run_ok(&[
        "runuser",
        "-u",
        "opsdeck",
        "--",
        "opsdeck",
        "token",
        "create",
        "--config",
        "/etc/opsdeck/opsdeck.toml",
        "--name",
        name,
        "--role",
        "owner",
    ]);
    token.trim().to_owned()
}

/// The package built, a sandbox booted with writable overlays, and the
/// package installed in it (`dpkg -i`, README "Install on a host" step 1);
/// `None` when either cannot be had here (the test is skipped).
pub struct Installed {
    /// The test's own directory; the package is `deb` in it.
    pub work: tempfile::TempDir,
    pub deb: String,
    pub sandbox: Sandbox,
}

pub fn installed() -> Option<Installed> {
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(work.path())?.display().to_string();
    let sandbox = Sandbox::boot()?;
    overlay_system_dirs(&sandbox);
    sandbox.run_ok(&["dpkg", "--log=/dev/null", "-i", &deb]);
    Some(Installed { work, deb, sandbox })
}

/// What README "Install on a host" steps 2–5 need besides the config: the
/// units the polkit rule lets opsdeck restart, the app accounts the sudoers
/// file lets it run steps as, and the directories the unit may write.
pub struct Grants<'a> {
    pub units: &'a [&'a str],
    pub users: &'a [&'a str],
    pub writable: &'a [&'a str],
}

/// README "Install on a host" step 2: `config` as
/// /etc/opsdeck/opsdeck.toml, readable by the service's group only
/// (staged in `work`, the test's own directory).
pub fn install_config(sandbox: &Sandbox, work: &Path, config: &str) {
    let staged = work.join("opsdeck.toml");
    std::fs::write(&staged, config).unwrap();
    let staged = staged.display().to_string();
    sandbox.run_ok(&[
        "install",
        "-m",
        "0640",
        "-g",
        "opsdeck",
        &staged,
        "/etc/opsdeck/opsdeck.toml",
    ]);
}

/// README "Install on a host" steps 2–5 with the shipped files: `config` as
/// /etc/opsdeck/opsdeck.toml, the shipped polkit rule listing `units`, the
/// shipped sudoers file with one line per app account, the sudo drop-in and
/// a `ReadWritePaths` drop-in; then `systemctl enable --now opsdeck`, and
/// waits until it answers on `port`. `opsdeck check` must not warn.
/// Returns its base URL.
pub async fn configure_and_start(
    installed: &Installed,
    config: &str,
    port: u16,
    grants: &Grants<'_>,
) -> String {
    let sandbox = &installed.sandbox;
    install_config(sandbox, installed.work.path(), config);
    let examples = "/usr/share/doc/opsdeck/examples";
    let dropins = "/run/systemd/system/opsdeck.service.d";
    for (from, to, mode) in [
        (
            format!("{examples}/polkit/50-opsdeck.rules"),
            "/etc/polkit-1/rules.d/50-opsdeck.rules".to_owned(),
            "0644",
        ),
        (
            format!("{examples}/sudoers.d/opsdeck"),
            "/etc/sudoers.d/opsdeck".to_owned(),
            "0440",
        ),
        (
            format!("{examples}/sudo.conf"),
            format!("{dropins}/sudo.conf"),
            "0644",
        ),
    ] {
        sandbox.run_ok(&["install", "-D", "-m", mode, "-g", "opsdeck", &from, &to]);
    }
    // The rule's own instruction: "list your apps' units below".
    let units = serde_json::to_string(grants.units).unwrap();
    sandbox.run_ok(&[
        "sed",
        "-i",
        &format!("s|var units = \\[.*\\];|var units = {units};|"),
        "/etc/polkit-1/rules.d/50-opsdeck.rules",
    ]);
    // The sudoers file's: "One line per app account".
    for user in grants.users.iter().filter(|u| **u != "rfc-app") {
        sandbox.run_ok(&[
            "sh",
            "-c",
            &format!("echo 'opsdeck ALL=({user}) NOPASSWD: ALL' >> /etc/sudoers.d/opsdeck"),
        ]);
    }
    sandbox.run_ok(&["visudo", "-cf", "/etc/sudoers.d/opsdeck"]);
    let writable: String = grants.writable.iter().map(|p| format!(" -{p}")).collect();
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!("printf '[Service]\\nReadWritePaths={writable}\\n' > {dropins}/paths.conf"),
    ]);
    // What systemd-tmpfiles does at a host's boot (tmpfiles.d/systemd.conf,
    // masked in the sandbox): the journal readable by systemd-journal, the
    // group the shipped unit gives opsdeck for its Logs page.
    sandbox.run_ok(&[
        "sh",
        "-c",
        "chgrp -R systemd-journal /run/log/journal && chmod 2755 /run/log/journal \
         && find /run/log/journal -mindepth 1 -type d -exec chmod 2750 {} + \
         && find /run/log/journal -type f -exec chmod g+r {} +",
    ]);
    sandbox.run_ok(&["systemctl", "daemon-reload"]);
    let started = sandbox.run(&["systemctl", "enable", "--now", "opsdeck"]);
    assert!(
        started.status.success(),
        "opsdeck.service did not start:\n{}",
        service_journal(sandbox)
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_health(&reqwest::Client::new(), &base, sandbox).await;
    let journal = service_journal(sandbox);
    assert!(!journal.contains("warning:"), "check warns:\n{journal}");
    base
}

/// Runs `script` with `sh -c` as `user`, in `dir`; its stdout.
pub fn as_user(sandbox: &Sandbox, user: &str, dir: &str, script: &str) -> String {
    sandbox.run_ok(&[
        "runuser",
        "-u",
        user,
        "--",
        "sh",
        "-c",
        &format!("set -e; cd {dir}; {script}"),
    ])
}

/// POSTs `body` to the API, waits for the job it started and fails the
/// test unless it succeeded; the job's id.
pub async fn job_ok(base: &str, token: &str, path: &str, body: Value) -> i64 {
    let started: Value = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["job"]
        .as_i64()
        .unwrap_or_else(|| panic!("{path}: {started}"));
    let state = super::cli::job_end(base, token, id).await;
    if state != "succeeded" {
        let output = super::cli::job_output(base, token, id).await;
        panic!("{path}: job {id} {state}:\n{output}");
    }
    id
}

/// The README's audit export, verified offline with `opsdeck audit verify`
/// (the test fails unless the chain holds); every row as
/// `(action, outcome, detail)`, oldest first.
pub fn verified_audit(sandbox: &Sandbox) -> Vec<(String, String, String)> {
    let file = "/var/lib/opsdeck/audit.jsonl";
    sandbox.run_ok(&[
        "runuser",
        "-u",
        "opsdeck",
        "--",
        "sh",
        "-c",
        &format!("opsdeck audit export --config /etc/opsdeck/opsdeck.toml --format jsonl > {file}"),
    ]);
    let verified = sandbox.run_ok(&["opsdeck", "audit", "verify", "--file", file]);
    assert!(verified.starts_with("verified "), "{verified}");
    sandbox
        .run_ok(&["cat", file])
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
            (field("action"), field("outcome"), field("detail"))
        })
        .collect()
}

/// [`verified_audit`] as one line per row, `action outcome`, and for a job
/// request the job's kind: what each step of a test left in the audit log.
/// Without `job.start` rows: the runner writes them while the request may
/// still be writing its own (a rollback's `release.create`), so their place
/// varies; each job's `job.end` row follows both.
pub fn audit_steps(sandbox: &Sandbox) -> Vec<String> {
    verified_audit(sandbox)
        .into_iter()
        .filter(|(action, ..)| action != "job.start")
        .map(|(action, outcome, detail)| {
            let detail: Value = serde_json::from_str(&detail).unwrap_or_default();
            match detail["kind"].as_str() {
                Some(kind) if action == "job.request" => format!("{action} {outcome} {kind}"),
                _ => format!("{action} {outcome}"),
            }
        })
        .collect()
}

/// The [`audit_steps`] of one job of `kind` that wrote `rows` in between.
pub fn job_steps(kind: &str, rows: &[&str]) -> Vec<String> {
    let mut all = vec![format!("job.request ok {kind}")];
    all.extend(rows.iter().map(|r| r.to_string()));
    all.push("job.end ok".to_owned());
    all
}

/// `deploy/examples/<name>` as the package installed it (the test fails
/// unless it is there, the same as in the source tree).
pub fn shipped_example(sandbox: &Sandbox, name: &str) -> String {
    let shipped = sandbox.run_ok(&["cat", &format!("/usr/share/doc/opsdeck/examples/{name}")]);
    let source = format!("{}/deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    assert_eq!(shipped, std::fs::read_to_string(source).unwrap());
    shipped
}
