//! An app on another host: deploy and rollback (every git command, build
//! step and `systemctl` call of the job; with the `releases` strategy the
//! export, the shared links and the `current` switch too), a secret
//! rotation (its env file backed up and replaced there), a command sweep,
//! a `releases` sweep and the on-call engineer's log follow, all go
//! through a real sshd whose sessions see the systemd sandbox's units and
//! journal (sshd runs inside it), while opsdeck checks the service's
//! health from its own side.

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
use support::webapp::{ada, answer, answer_when_up, checkout_setup, releases_setup, repository};

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
        "{}\n{}host = \"remote\"\nenv_file = {:?}\n\n[[app.secret]]\nname = \"SECRET_KEY\"\ngenerate = \"hex:32\"\n\n[[app.sweep]]\nname = \"tidy\"\nkind = \"command\"\nrun = [\"sh\", \"-c\", \"echo tidied from $SSH_CONNECTION\"]\n\n[[app.action]]\nname = \"show-env\"\nrun = [\"cat\", {:?}]\n",
        sshd.hosts_toml(&sshd.known_hosts()),
        checkout_setup(&repos, port),
        env_file.display().to_string(),
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

    // A job's output masks the far env file's values, read there when
    // the job starts: a step printing the file shows no secret.
    let job = opsdeck::ops::actions::run(ctx, &ada(), "web", "show-env")
        .await
        .unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains("SECRET_KEY=[redacted]") && !said.contains(value),
        "{said}"
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

#[test]
fn a_remote_releases_app_is_deployed_rolled_back_and_swept_over_ssh() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox
        .run_test_inside("inside_a_remote_releases_app_is_deployed_rolled_back_and_swept_over_ssh");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_a_remote_releases_app_is_deployed_rolled_back_and_swept_over_ssh() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let Some(sshd) = Sshd::start() else { return };
    let (repos, v1) = repository();
    let port = support::free_port();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let config = format!(
        "{}\n{}host = \"remote\"\n\n[[app.sweep]]\nname = \"old-releases\"\nkind = \"releases\"\nkeep = 1\n\n[[app.sweep]]\nname = \"db-backup\"\nkind = \"sqlite-backup\"\ndatabase = {:?}\ndir = {:?}\nkeep = 1\n",
        sshd.hosts_toml(&sshd.known_hosts()),
        releases_setup(&repos, root, port, 5),
        root.join("shared/app.db").display().to_string(),
        root.join("backups").display().to_string(),
    );
    let server = support::server::start(&config).await;
    let ctx = &server.ctx;
    let on_host = format!(" on {}@127.0.0.1:{}", support::sshd::whoami(), sshd.port);
    let current = || {
        let target = std::fs::read_link(root.join("current")).unwrap();
        target.file_name().unwrap().to_string_lossy().into_owned()
    };
    let releases = || {
        let mut names: Vec<String> = std::fs::read_dir(root.join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // The first release is exported, linked and switched to over SSH.
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    let first = current();
    assert!(first.ends_with(&v1[..7]), "{first}");
    let dir = root.join("releases").join(&first);
    assert!(
        said.contains(&format!("{}{on_host} holds {v1}", dir.display())),
        "{said}"
    );
    assert!(said.contains("current was nothing; it is now"), "{said}");
    assert_eq!(
        std::fs::read_link(dir.join(".env")).unwrap(),
        root.join("shared/.env")
    );
    assert!(dir.join("build.out").exists() && !dir.join(".git").exists());
    assert_eq!(answer_when_up(port).await, "v1");

    // v2 goes live; v3 fails its health check and current switches back.
    repos.push("VERSION", "v2", "Version 2");
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v2");
    let second = current();
    repos.push_files(
        &[("VERSION", Some("v3")), ("UNHEALTHY", Some("yes"))],
        "Version 3",
    );
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Failed, "{said}");
    assert!(
        said.contains(&format!("current is back at {second}")),
        "{said}"
    );
    assert_eq!(current(), second);
    assert_eq!(answer(port).await, "v2");
    let third = releases().pop().unwrap();
    assert_ne!(third, second);

    // Rollback to v1: refused while its directory is missing there…
    let first_dir = root.join("releases").join(&first);
    let away = root.join("v1-moved-away");
    std::fs::rename(&first_dir, &away).unwrap();
    let refused = rollback::request(ctx, &ada(), "web", None).await;
    assert!(
        matches!(refused, Err(Error::Conflict(ref m))
            if m.contains("has no directory any more") && m.contains(&on_host)),
        "{refused:?}"
    );
    std::fs::rename(&away, &first_dir).unwrap();
    // …then a switch over SSH, no build, no new directory.
    let job = rollback::request(ctx, &ada(), "web", None).await.unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(!said.contains("build.sh"), "{said}");
    assert_eq!(current(), first);
    assert_eq!(answer(port).await, "v1");
    assert_eq!(releases().len(), 3);

    // The releases sweep, keep 1: v2 (rolled away from) would go, v3
    // (failed) is kept while a process works in it — found through the
    // far side's /proc.
    let third_dir = root.join("releases").join(&third);
    let mut lingering = std::process::Command::new("sleep")
        .arg("300")
        .current_dir(&third_dir)
        .spawn()
        .unwrap();
    let job = sweeps::request(ctx, &ada(), "web", "old-releases", true)
        .await
        .unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains(&format!("keep release {first}: current"))
            && said.contains(&format!(
                "keep release {third}: in use by process {}",
                lingering.id()
            ))
            && said.contains(&format!(
                "would remove release {}",
                root.join("releases").join(&second).display()
            )),
        "{said}"
    );
    let job = sweeps::request(ctx, &ada(), "web", "old-releases", false)
        .await
        .unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains(&format!(
            "removed release {}{on_host}",
            root.join("releases").join(&second).display()
        )),
        "{said}"
    );
    assert_eq!(releases(), vec![first.clone(), third.clone()]);
    lingering.kill().unwrap();
    let _ = lingering.wait();

    // sqlite-backup on the far side, by its sqlite3: a checked copy; the
    // next run makes a new one and removes the old (keep 1).
    let db = root.join("shared/app.db");
    let made = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE t (n); INSERT INTO t VALUES (42);")
        .status()
        .unwrap();
    assert!(made.success());
    let backups = || {
        let mut names: Vec<_> = std::fs::read_dir(root.join("backups"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    };
    let mut made = Vec::new();
    for _ in 0..2 {
        let job = sweeps::request(ctx, &ada(), "web", "db-backup", false)
            .await
            .unwrap();
        let (state, said) = server.outcome(job).await;
        assert_eq!(state, State::Succeeded, "{said}");
        let copies = backups();
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert!(
            said.contains(&format!("created backup {}{on_host}", copies[0].display()))
                && said.contains("integrity_check ok"),
            "{said}"
        );
        let rows = std::process::Command::new("sqlite3")
            .arg(&copies[0])
            .arg("SELECT n FROM t")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&rows.stdout), "42\n");
        made.push(copies[0].clone());
    }
    assert_ne!(made[0], made[1]);

    // A restore of that backup, there: the row written since is gone, the
    // database as it was is kept beside the backup.
    let added = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("INSERT INTO t VALUES (43);")
        .status()
        .unwrap();
    assert!(added.success());
    let name = made[1].file_name().unwrap().to_string_lossy().into_owned();
    let job = opsdeck::ops::restore::request(ctx, &ada(), "web", "db-backup", &name)
        .await
        .unwrap();
    let (state, said) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{said}");
    assert!(
        said.contains(&format!("{}{on_host} is now a copy of", db.display())),
        "{said}"
    );
    let rows = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT group_concat(n) FROM t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout), "42\n");
    assert_eq!(backups().len(), 2);
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
