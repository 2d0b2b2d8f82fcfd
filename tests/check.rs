//! `opsdeck check` names every mistake of the README's troubleshooting
//! table before anyone clicks a button: run as an unprivileged user on a real
//! systemd (the sandbox), against a host set up with those mistakes.
//! (A config typo is tests/config.rs; a directory missing from the unit's
//! `ReadWritePaths` is tests/package.rs, under the shipped unit.)

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use support::sandbox::Sandbox;

const APPS: &str = r#"
[[app]]
name = "web"
path = "{dir}/web"
units = ["web.service", "nosuch.service"]

[[app]]
name = "bot"
sudo = true
units = ["web.service"]

[[app.secret]]
name = "SIGNING_KEY"
file = "{dir}/bot/signing.pem"
generate = "ed25519"
"#;

fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    let text = text.replace("{dir}", &dir.display().to_string());
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path.display().to_string()
}

/// Runs `opsdeck check` as `nobody`, its argv after `prefix`; stderr and
/// stdout together.
fn check_as_nobody(
    sandbox: &Sandbox,
    prefix: &[&str],
    binary: &str,
    config: &str,
) -> (Output, String) {
    let mut argv = vec!["runuser", "-u", "nobody", "--"];
    argv.extend(prefix);
    argv.extend([binary, "check", "--config", config]);
    let output = sandbox.run(&argv);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

/// A directory `nobody` may enter, with a copy of the binary: everything
/// `nobody` must read lives there. Its path and the binary's.
fn check_dir(sandbox: &Sandbox) -> (std::path::PathBuf, String) {
    let dir = sandbox.dir().join("check");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(sandbox.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let binary = dir.join("opsdeck");
    fs::copy(env!("CARGO_BIN_EXE_opsdeck"), &binary).unwrap();
    (dir, binary.display().to_string())
}

#[test]
fn check_names_every_mistake_of_the_troubleshooting_table() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    let (dir, binary) = check_dir(&sandbox);
    // The app's directory belongs to root: nobody cannot write it.
    fs::create_dir(dir.join("web")).unwrap();
    fs::set_permissions(dir.join("web"), fs::Permissions::from_mode(0o755)).unwrap();
    // The bot's key file too: a rotation could not rewrite it.
    fs::create_dir(dir.join("bot")).unwrap();
    fs::set_permissions(dir.join("bot"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("bot/signing.pem"), "key\n").unwrap();
    fs::set_permissions(
        dir.join("bot/signing.pem"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    sandbox.install_unit("web.service", "[Service]\nExecStart=/bin/sleep infinity\n");
    sandbox.run_ok(&["systemctl", "start", "web.service"]);
    sandbox.start_bus_and_polkit();

    let config = write_config(
        &dir,
        "opsdeck.toml",
        &format!("[server]\ndata_dir = \"/tmp/opsdeck-check-data\"\n{APPS}"),
    );
    let (output, said) = check_as_nobody(&sandbox, &[], &binary, &config);
    assert!(
        output.status.success(),
        "warnings do not fail the check: {said}"
    );
    for row in [
        // "a deploy fails with Permission denied"
        &format!(
            "app \"web\": {}/web is not writable by nobody (EACCES",
            dir.display()
        ),
        // "a rotation fails with Permission denied"
        &format!(
            "app \"bot\": secret rotation rewrites {}/bot/signing.pem, which nobody cannot read and write (EACCES",
            dir.display()
        ),
        // "a restart fails with Interactive authentication required"
        "app \"web\": opsdeck may not restart web.service: ",
        "Interactive authentication required",
        "List it in the polkit rule /etc/polkit-1/rules.d/50-opsdeck.rules",
        // "a restart fails with a password is required"
        "app \"bot\": opsdeck may not restart web.service",
        "a password is required",
        "List it in /etc/sudoers.d/opsdeck",
        // "a deploy fails with … is not installed on this host"
        "nosuch.service is not installed on this host",
        // "the Logs page shows no lines"
        "nobody is not in the systemd-journal group",
        // "nobody can sign in"
        "neither `gitea_url` nor `dev_login` is set",
    ] {
        assert!(said.contains(row), "missing {row:?} in:\n{said}");
    }

    // "a restart fails with 'The no new privileges flag is set'": sudo
    // under a hardened unit without the drop-in.
    let (_, said) = check_as_nobody(&sandbox, &["setpriv", "--no-new-privs"], &binary, &config);
    assert!(
        said.contains("app \"bot\": opsdeck may not restart web.service")
            && said.contains("no new privileges")
            && said.contains("install the drop-in deploy/sudo.conf"),
        "{said}"
    );

    // "a secret file is readable by everyone".
    fs::write(dir.join("client_secret"), "s3cret\n").unwrap();
    fs::set_permissions(dir.join("client_secret"), fs::Permissions::from_mode(0o644)).unwrap();
    let config = write_config(
        &dir,
        "secret.toml",
        "[server]\ndata_dir = \"/tmp/opsdeck-check-data\"\n\
         [auth]\ngitea_url = \"https://git.example.org/\"\nclient_id = \"opsdeck\"\n\
         client_secret_file = \"{dir}/client_secret\"\n",
    );
    let (_, said) = check_as_nobody(&sandbox, &[], &binary, &config);
    assert!(
        said.contains("auth.client_secret_file")
            && said.contains("holds a secret and is readable by every user on this machine"),
        "{said}"
    );
    sandbox.teardown();
}

/// An app whose steps run as its own `user`: the account, the sudoers line
/// letting opsdeck use it, and a Node build under a unit whose
/// MemoryDenyWriteExecute would kill it, each named with the line to add.
#[test]
fn check_names_what_running_steps_as_the_apps_user_needs() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    let (dir, binary) = check_dir(&sandbox);
    let config = write_config(
        &dir,
        "opsdeck.toml",
        r#"[server]
data_dir = "/tmp/opsdeck-check-data"

[[app]]
name = "ghost"
user = "opsdeck-no-such-user"

[[app]]
name = "rfc"
user = "daemon"

[[app.build]]
run = ["npm", "run", "build"]
"#,
    );
    let (output, said) = check_as_nobody(&sandbox, &[], &binary, &config);
    assert!(output.status.success(), "warnings only: {said}");
    for row in [
        "app \"ghost\": user \"opsdeck-no-such-user\" does not exist on this host",
        "useradd --system",
        "app \"rfc\": opsdeck may not run steps as daemon",
        "a password is required",
        "add to /etc/sudoers.d/opsdeck",
        "nobody ALL=(daemon) NOPASSWD: ALL",
    ] {
        assert!(said.contains(row), "missing {row:?} in:\n{said}");
    }
    assert!(!said.contains("MemoryDenyWriteExecute"), "{said}");

    // Under a unit that sets MemoryDenyWriteExecute, the Node build is named.
    sandbox.start_bus_and_polkit();
    let under_unit = sandbox.run(&[
        "systemd-run",
        "--wait",
        "--pipe",
        "--quiet",
        "-p",
        "MemoryDenyWriteExecute=yes",
        "-p",
        "User=nobody",
        &binary,
        "check",
        "--config",
        &config,
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&under_unit.stdout),
        String::from_utf8_lossy(&under_unit.stderr)
    );
    assert!(
        said.contains("app \"rfc\": the build step `npm run build` runs Node")
            && said.contains("MemoryDenyWriteExecute=yes of run-"),
        "{said}"
    );
    sandbox.teardown();
}
