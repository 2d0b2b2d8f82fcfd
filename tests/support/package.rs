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
