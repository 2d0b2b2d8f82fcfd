//! The SSH transport against a real sshd: hostile values arrive as data,
//! files are written atomically with their content on stdin, host keys are
//! checked strictly, one connection is shared, and a dropped connection
//! fails cleanly without breaking the next command.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use opsdeck::config::Config;
use opsdeck::host::ssh::Remote;
use support::sshd::Sshd;

const T: Duration = Duration::from_secs(30);

/// opsdeck's view of the test server, with its own data directory (so its
/// own shared-connection sockets) and `known_hosts`.
fn remote(sshd: &Sshd, data: &Path, known_hosts: &Path) -> Remote {
    let text = format!(
        "[server]\ndata_dir = {:?}\n{}",
        data.display().to_string(),
        sshd.hosts_toml(known_hosts)
    );
    let config = Config::parse(&text, &data.join("opsdeck.toml")).unwrap();
    Remote::resolve(&config, "remote").unwrap().unwrap()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[tokio::test]
async fn hostile_values_reach_the_remote_side_as_data() {
    let Some(sshd) = Sshd::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let remote = remote(&sshd, data.path(), &sshd.known_hosts());
    let marker = data.path().join("pwned");
    let m = marker.display().to_string();
    let hostile = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("; touch {m}"),
        format!("' ; touch {m}; '"),
        format!("\" ; touch {m}; \""),
        format!("&& touch {m}"),
        format!("| touch {m}"),
        format!("\ntouch {m}\n"),
        "*".into(),
        "~".into(),
        "$HOME".into(),
        "\\".into(),
        "--upload-pack=touch /tmp/x".into(),
        "-e".into(),
        "{a,b}".into(),
        "é ✓ \t tab".into(),
        String::new(),
    ];
    for value in &hostile {
        let out = remote
            .capture(&argv(&["printf", "%s", value]), T)
            .await
            .unwrap();
        assert!(out.success(), "{value:?}: {out:?}");
        assert_eq!(&out.stdout, value);
    }

    // A working directory and an environment value, hostile too.
    let dir = data.path().join("it's a $(dir) `x`");
    std::fs::create_dir(&dir).unwrap();
    let env = BTreeMap::from([("VALUE".to_owned(), format!("'$(touch {m})'"))]);
    let line = remote
        .command(
            &argv(&["sh", "-c", "pwd; printf %s \"$VALUE\""]),
            Some(&dir),
            &env,
        )
        .unwrap();
    let out = std::process::Command::new(&line[0])
        .args(&line[1..])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, format!("{}\n'$(touch {m})'", dir.display()));
    assert!(!marker.exists(), "a value was run as a command");
}

/// An env file on the host is backed up, replaced and put back with the
/// same guarantees as on this machine; its content never rides in argv.
#[tokio::test]
async fn env_files_are_backed_up_replaced_and_restored_on_the_host() {
    use opsdeck::host::{Host, env_edit};
    use std::os::unix::fs::PermissionsExt;
    let Some(sshd) = Sshd::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let host = Host::Shell(remote(&sshd, data.path(), &sshd.known_hosts()));
    let dir = data.path().join("app dir; $(touch pwned)");
    std::fs::create_dir(&dir).unwrap();
    let env_file = dir.join(".env");
    std::fs::write(&env_file, "OLD=1\n").unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o640)).unwrap();

    assert_eq!(env_edit::read(&host, &env_file).await.unwrap(), "OLD=1\n");
    let mut backups = Vec::new();
    for _ in 0..3 {
        backups.push(env_edit::backup(&host, &env_file, 2).await.unwrap());
    }
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".opsdeck-backup-"))
        .collect();
    assert_eq!(kept.len(), 2, "the newest two backups are kept: {kept:?}");
    assert!(!backups[0].exists() && backups[2].exists());
    let mode = std::fs::metadata(&backups[2]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a backup is private");
    assert_eq!(std::fs::read(&backups[2]).unwrap(), b"OLD=1\n");

    let content = b"# kept\nSECRET_KEY='a$(b)`c`'\nBINARY=\x01\x02\n".to_vec();
    env_edit::replace(&host, &env_file, content.clone())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&env_file).unwrap(), content);
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the file keeps its mode");
    let temps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().contains(".opsdeck-")
                && !e.file_name().to_string_lossy().contains("backup")
        })
        .collect();
    assert!(temps.is_empty(), "no temp file is left behind: {temps:?}");

    env_edit::restore(&host, &env_file, &backups[2])
        .await
        .unwrap();
    assert_eq!(std::fs::read(&env_file).unwrap(), b"OLD=1\n");
    assert!(!data.path().join("pwned").exists() && !dir.join("pwned").exists());

    // A file that is not text is refused, not decoded lossily (a rotation
    // would write it back changed).
    let binary = dir.join("latin1.env");
    std::fs::write(&binary, b"NAME=caf\xe9\n").unwrap();
    let err = env_edit::read(&host, &binary)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not UTF-8 text"), "{err}");

    // A directory that does not exist: a clear error, nothing written.
    let err = env_edit::replace(&host, &data.path().join("nope/.env"), content)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot replace") && err.contains("nope/.env"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_or_changed_host_keys_are_refused_and_nothing_runs() {
    let Some(sshd) = Sshd::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let marker = data.path().join("ran");
    let touch = argv(&["touch", &marker.display().to_string()]);

    let changed = data.path().join("known_hosts_changed");
    sshd.write_known_hosts(&changed, &sshd.other_key("impostor"));
    let err = remote(&sshd, &data.path().join("a"), &changed)
        .capture(&touch, T)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1"), "the error names the host: {err}");

    let empty = data.path().join("known_hosts_empty");
    std::fs::write(&empty, "").unwrap();
    let err = remote(&sshd, &data.path().join("b"), &empty)
        .capture(&touch, T)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(
        err.contains("ssh-keyscan"),
        "the error says what to do: {err}"
    );
    assert!(!marker.exists());
}

#[tokio::test]
async fn commands_share_one_connection_and_survive_a_dropped_one() {
    let Some(sshd) = Sshd::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let remote = remote(&sshd, data.path(), &sshd.known_hosts());
    for i in 0..10 {
        let out = remote
            .capture(&argv(&["echo", &i.to_string()]), T)
            .await
            .unwrap();
        assert_eq!(out.stdout, format!("{i}\n"));
    }
    assert_eq!(sshd.connections(), 1, "ten commands, one connection");

    // The network drops while a command runs: that command fails with
    // ssh's reason; the next one connects again and works.
    let nonce = format!("opsdeck-ssh-test-{}", std::process::id());
    let running = {
        let remote = remote.clone();
        let script = argv(&["sh", "-c", "echo started; sleep 20", &nonce]);
        tokio::spawn(async move { remote.capture(&script, T).await })
    };
    let mut sessions = 0;
    for _ in 0..400 {
        sessions = remote_processes(&nonce);
        if sessions > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(sessions > 0, "the remote command started");
    assert!(sshd.drop_connections() > 0);
    let err = running.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("cannot run"), "{err}");
    let out = remote.capture(&argv(&["echo", "again"]), T).await.unwrap();
    assert_eq!(out.stdout, "again\n");
    kill_remote_processes(&nonce);
}

/// The test's remote commands (sshd runs them on this same machine; the
/// local `ssh` client's own command line holds the nonce too, but starts
/// with `ssh`).
/// Waits until a process tagged `nonce` runs on the host.
async fn wait_until_running(nonce: &str) {
    for _ in 0..400 {
        if remote_processes(nonce) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the step never ran on the host");
}

fn remote_processes(nonce: &str) -> usize {
    pids_with(nonce).len()
}

fn kill_remote_processes(nonce: &str) {
    for pid in pids_with(nonce) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn pids_with(nonce: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.starts_with(b"sh\0-c\0echo started")
                    && String::from_utf8_lossy(&c).contains(nonce)
            })
        })
        .filter(|pid| *pid != std::process::id() as i32)
        .collect()
}

/// A custom action of an app on another host runs there, in its `cwd` with
/// its `env`; cancelling it stops its processes on that host too.
#[tokio::test]
async fn actions_of_a_remote_app_run_there_and_a_cancel_stops_them_there() {
    let Some(sshd) = Sshd::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let nonce = format!("opsdeck-ssh-cancel-{}", std::process::id());
    let config = format!(
        "{}\n[[app]]\nname = \"far\"\nhost = \"remote\"\n\n\
         [[app.action]]\nname = \"hello\"\nrun = [\"sh\", \"-c\", \"echo \\\"$GREETING from $(pwd)\\\"\"]\n\
         cwd = {:?}\nenv = {{ GREETING = \"hi; $(id)\" }}\n\n\
         [[app.action]]\nname = \"long\"\nrun = [\"sh\", \"-c\", \"echo started; sleep 30\", {nonce:?}]\n",
        sshd.hosts_toml(&sshd.known_hosts()),
        work.path().display().to_string(),
    );
    let s = support::server::start(&config).await;
    let token = s.token("ops", opsdeck::auth::Role::Owner).await;
    let http = support::server::client();
    let run = |action: &'static str| {
        http.post(s.at(&format!("/api/apps/far/actions/{action}/run")))
            .bearer_auth(&token)
            .send()
    };

    let id = support::server::json(run("hello").await.unwrap()).await["job"]
        .as_i64()
        .unwrap();
    let state = s.finished(id).await;
    let output = s
        .get_as(&format!("/api/jobs/{id}/output"), &token)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(state, opsdeck::jobs::State::Succeeded, "{output}");
    assert!(
        output.contains(&format!("hi; $(id) from {}", work.path().display())),
        "{output}"
    );

    let id = support::server::json(run("long").await.unwrap()).await["job"]
        .as_i64()
        .unwrap();
    wait_until_running(&nonce).await;
    let cancel = http
        .post(s.at(&format!("/api/jobs/{id}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success(), "{cancel:?}");
    assert_eq!(s.finished(id).await, opsdeck::jobs::State::Cancelled);
    let mut left = usize::MAX;
    for _ in 0..400 {
        left = remote_processes(&nonce);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        left, 0,
        "the cancelled step's processes on the host were stopped"
    );
}

/// The connection drops while a job's step runs on the host: the job fails
/// with ssh's reason, and the next job connects again and succeeds.
#[tokio::test]
async fn a_connection_dropped_mid_job_fails_it_cleanly_and_the_next_job_runs() {
    let Some(sshd) = Sshd::start() else { return };
    let nonce = format!("opsdeck-ssh-drop-{}", std::process::id());
    let config = format!(
        "{}\n[[app]]\nname = \"far\"\nhost = \"remote\"\n\n\
         [[app.action]]\nname = \"long\"\nrun = [\"sh\", \"-c\", \"echo started; sleep 30\", {nonce:?}]\n\n\
         [[app.action]]\nname = \"hello\"\nrun = [\"echo\", \"hello again\"]\n",
        sshd.hosts_toml(&sshd.known_hosts()),
    );
    let s = support::server::start(&config).await;
    let actor = opsdeck::auth::Actor {
        login: "ops".into(),
        role: opsdeck::auth::Role::Owner,
        via: opsdeck::auth::Via::Token,
        remote: String::new(),
    };
    let id = opsdeck::ops::actions::run(&s.ctx, &actor, "far", "long")
        .await
        .unwrap();
    wait_until_running(&nonce).await;
    assert!(sshd.drop_connections() > 0);
    let (state, output) = tokio::time::timeout(Duration::from_secs(20), s.outcome(id))
        .await
        .expect("the job ends soon after its connection drops");
    assert_eq!(state, opsdeck::jobs::State::Failed, "{output}");
    assert!(
        output.contains("started")
            && output.contains("the connection to")
            && output.contains("was lost"),
        "{output}"
    );

    let id = opsdeck::ops::actions::run(&s.ctx, &actor, "far", "hello")
        .await
        .unwrap();
    let (state, output) = s.outcome(id).await;
    assert_eq!(state, opsdeck::jobs::State::Succeeded, "{output}");
    assert!(output.contains("hello again"), "{output}");
    kill_remote_processes(&nonce);
}
