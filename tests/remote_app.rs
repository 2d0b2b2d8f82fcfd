//! An app on another host: deploy and rollback (every git command, build
//! step and `systemctl` call of the job), a secret rotation (its env file
//! backed up and replaced there), a command sweep and the on-call engineer's log follow, all
//! go through a real sshd whose sessions see the systemd
//! sandbox's units and journal (sshd runs inside it), while opsdeck checks
//! the service's health from its own side.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use opsdeck::Error;
use opsdeck::auth::Role;
use opsdeck::jobs::State;
use opsdeck::ops::{deploy, rollback, secrets, sweeps};
use support::sandbox::{self, Sandbox};
use support::sse::read_events_as;
use support::sshd::Sshd;
use support::webapp::{ada, answer, answer_when_up, checkout_setup, repository};

#[test]
fn a_remote_app_deploys_rolls_back_rotates_and_is_followed_over_ssh() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox
        .run_test_inside("inside_a_remote_app_deploys_rolls_back_rotates_and_is_followed_over_ssh");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_a_remote_app_deploys_rolls_back_rotates_and_is_followed_over_ssh() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let Some(sshd) = Sshd::start() else { return };
    let (repos, _v1) = repository();
    let port = support::free_port();
    let env_dir = tempfile::tempdir().unwrap();
    let env_file = env_dir.path().join(".env");
    std::fs::write(&env_file, "# web\nSECRET_KEY=old\nDEBUG='no'\n").unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let config = format!(
        "{}\n{}host = \"remote\"\nenv_file = {:?}\n\n[[app.secret]]\nname = \"SECRET_KEY\"\ngenerate = \"hex:32\"\n\n[[app.sweep]]\nname = \"tidy\"\nkind = \"command\"\nrun = [\"sh\", \"-c\", \"echo tidied from $SSH_CONNECTION\"]\n",
        sshd.hosts_toml(&sshd.known_hosts()),
        checkout_setup(&repos, port),
        env_file.display().to_string()
    );
    let server = support::server::start(&config).await;
    let ctx = &server.ctx;
    assert_eq!(answer_when_up(port).await, "v1");
    // v2 and v3 ship over SSH: checked out, built and restarted there.
    let v2 = repos.push("VERSION", "v2", "Version 2");
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains(&format!(
            "{} on {}@127.0.0.1:{} was at",
            repos.app.display(),
            support::sshd::whoami(),
            sshd.port
        )) && said.contains(&format!("it is now at {v2}")),
        "{said}"
    );
    assert!(said.contains("restarted web.service"), "{said}");
    assert_eq!(answer(port).await, "v2");
    repos.push("VERSION", "v3", "Version 3");
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v3");

    // Rollback: the previous good release, checked out over SSH again.
    let job = rollback::request(ctx, &ada(), "web", None).await.unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert_eq!(answer(port).await, "v2");

    // A secret rotation edits the env file on the far side: one key
    // changes, every other byte, the mode and a private backup stay.
    let job = secrets::rotate(ctx, &ada(), "web", "SECRET_KEY")
        .await
        .unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains(&format!("backed up {} on ", env_file.display())),
        "{said}"
    );
    let text = std::fs::read_to_string(&env_file).unwrap();
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("SECRET_KEY="))
        .unwrap();
    assert_eq!(value.len(), 64, "{text}");
    assert_eq!(
        text.replace(value, "old"),
        "# web\nSECRET_KEY=old\nDEBUG='no'\n"
    );
    assert!(
        !said.contains(value),
        "the new value is never printed: {said}"
    );
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let backups: Vec<_> = std::fs::read_dir(env_dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".env.opsdeck-backup-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(backups[0].path()).unwrap(),
        "# web\nSECRET_KEY=old\nDEBUG='no'\n"
    );
    assert_eq!(
        answer(port).await,
        "v2",
        "the service was restarted and answers"
    );

    // A command sweep runs in an ssh session on the far side (sshd sets
    // SSH_CONNECTION there: "client port server port").
    let job = sweeps::request(ctx, &ada(), "web", "tidy", false)
        .await
        .unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains("tidied from 127.0.0.1 ")
            && said.contains(&format!(" 127.0.0.1 {}", sshd.port)),
        "{said}"
    );

    // A ref that would be shell syntax on the far side never gets there.
    let marker = repos.app.parent().unwrap().join("pwned");
    for hostile in [
        format!("main;touch {}", marker.display()),
        format!("$(touch {})", marker.display()),
        "--upload-pack=id".into(),
    ] {
        let refused = deploy::request(ctx, &ada(), "web", &hostile).await;
        assert!(
            matches!(refused, Err(Error::BadRequest(ref m)) if m.contains("is refused")),
            "{hostile}: {refused:?}"
        );
    }
    assert!(!marker.exists());

    // The app page's health glance asks the far side's systemd.
    let token = server.token("olly", Role::Operator).await;
    let glance = server
        .get_as("/apps/web/health", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        glance.contains("<code>web.service</code>")
            && glance.contains("active (running)")
            && glance.contains("verdict-healthy"),
        "{glance}"
    );

    // The on-call engineer follows the unit's journal: `journalctl` runs
    // on the far side, under sshd, and a request to the service shows up.
    let mut stream = support::server::client()
        .get(server.at("/api/apps/web/logs?backfill=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let asking = tokio::spawn(async move {
        loop {
            answer(port).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut buf = String::new();
    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        read_events_as::<String>(&mut stream, &mut buf, |(_, _, data)| {
            data.contains("GET / HTTP/1.1")
        }),
    )
    .await;
    asking.abort();
    assert!(
        seen.is_ok(),
        "the request's journal line reached the viewer"
    );
    assert!(
        journalctl_under_sshd(),
        "the viewer's journalctl runs in an ssh session"
    );
}

/// Whether a `journalctl` runs whose parent is an sshd session process.
fn journalctl_under_sshd() -> bool {
    let comm = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if comm(&pid).trim() != "journalctl" {
            return false;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The parent's pid is the second field after the `(comm)`.
        let parent = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned();
        comm(&parent).trim().starts_with("sshd")
    })
}
