//! `host::git`, `host::systemd` and `host::probe` against real git
//! repositories and a real systemd (the sandbox), asserting what an operator
//! would read.

mod support;

use std::fs;
use std::time::Duration;

use opsdeck::Error;
use opsdeck::config::Health;
use opsdeck::host::Host;
use opsdeck::host::git::{self, Sha};
use opsdeck::host::probe;
use opsdeck::host::systemd::Systemctl;
use support::free_port;
use support::repos::{Repos, sh_git};
use support::sandbox::Sandbox;

// ---------------------------------------------------------------- git

#[tokio::test]
async fn fetch_then_resolve_gives_the_remote_branch_not_the_stale_local_one() {
    let repos = Repos::new();
    let v1 = git::head(&Host::Local, &repos.app).await.unwrap();
    let v2 = repos.push("version", "v2", "Second version");

    // Before fetching, the work tree does not know v2.
    assert_eq!(
        git::resolve(&Host::Local, &repos.app, "main")
            .await
            .unwrap(),
        v1
    );
    git::fetch(&Host::Local, &repos.app).await.unwrap();
    let resolved = git::resolve(&Host::Local, &repos.app, "main")
        .await
        .unwrap();
    assert_eq!(resolved.as_str(), v2);

    sh_git(&repos.author, &["tag", "release-1", v1.as_str()]);
    sh_git(&repos.author, &["push", "-q", "origin", "release-1"]);
    git::fetch(&Host::Local, &repos.app).await.unwrap();
    assert_eq!(
        git::resolve(&Host::Local, &repos.app, "release-1")
            .await
            .unwrap(),
        v1
    );
    assert_eq!(
        git::resolve(&Host::Local, &repos.app, &v2[..10])
            .await
            .unwrap()
            .as_str(),
        v2
    );
}

#[tokio::test]
async fn checkout_detaches_at_the_sha_and_log_lists_what_ships() {
    let repos = Repos::new();
    let v1 = git::head(&Host::Local, &repos.app).await.unwrap();
    repos.push("version", "v2", "Second version");
    let v3 = repos.push("notes", "hello", "Add notes");
    git::fetch(&Host::Local, &repos.app).await.unwrap();
    let target = git::resolve(&Host::Local, &repos.app, "main")
        .await
        .unwrap();

    let ships = git::log(&Host::Local, &repos.app, &v1, &target)
        .await
        .unwrap();
    let lines: Vec<String> = ships
        .iter()
        .map(|c| format!("{} {} ({})", c.sha.short(), c.subject, c.author))
        .collect();
    assert_eq!(
        lines,
        [
            format!("{} Add notes (Ada Lovelace)", &v3[..7]),
            format!("{} Second version (Ada Lovelace)", ships[1].sha.short()),
        ]
    );

    git::checkout(&Host::Local, &repos.app, &target)
        .await
        .unwrap();
    assert_eq!(git::head(&Host::Local, &repos.app).await.unwrap(), target);
    assert_eq!(fs::read_to_string(repos.app.join("version")).unwrap(), "v2");
    assert_eq!(
        sh_git(&repos.app, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "HEAD"
    );
    assert!(
        git::log(&Host::Local, &repos.app, &target, &target)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_dirty_work_tree_is_refused_naming_the_changed_files() {
    let repos = Repos::new();
    git::ensure_clean(&Host::Local, &repos.app).await.unwrap();
    // Untracked files (build output, .env) do not make a tree dirty.
    fs::write(repos.app.join("build.log"), "output").unwrap();
    git::ensure_clean(&Host::Local, &repos.app).await.unwrap();

    fs::write(repos.app.join("version"), "edited on the server").unwrap();
    let Err(Error::Conflict(message)) = git::ensure_clean(&Host::Local, &repos.app).await else {
        panic!("a changed file must be refused");
    };
    assert_eq!(
        message,
        format!(
            "the work tree {} has uncommitted changes to version; commit or discard them before deploying",
            repos.app.display()
        )
    );
}

#[tokio::test]
async fn hostile_and_unknown_refs_are_refused_before_git_runs_them() {
    let repos = Repos::new();
    let marker = repos.app.parent().unwrap().join("x");
    let upload_pack = format!("--upload-pack=touch {}", marker.display());
    let long = "a".repeat(10 * 1024);
    let refused = [
        (upload_pack.as_str(), "contains '='"),
        ("--upload-pack=x", "contains '='"),
        ("-main", "starts with \"-\""),
        ("main;rm -rf", "contains ';'"),
        ("main;id", "contains ';'"),
        ("$(id)", "contains '$'"),
        ("a..b", "contains \"..\""),
        ("../../etc", "contains \"..\""),
        ("main@{1}", "contains '@'"),
        ("HEAD~1", "contains '~'"),
        ("main^", "contains '^'"),
        ("ma\nin", "contains '\\n'"),
        ("release/", "empty path component"),
        ("a/.hidden", "starts with \".\""),
        ("main.lock", "ends with \".lock\""),
        (long.as_str(), "10240 bytes long"),
    ];
    for (name, why) in refused {
        let Err(Error::BadRequest(message)) = git::resolve(&Host::Local, &repos.app, name).await
        else {
            panic!("{name:?} must be refused");
        };
        assert!(
            message.contains("is refused") && message.contains(why),
            "{name:?}: {message}"
        );
        assert!(
            message.len() < 200,
            "the message quotes a shortened ref: {message}"
        );
    }
    assert!(!marker.exists(), "git ran the upload-pack command");

    let Err(Error::BadRequest(message)) =
        git::resolve(&Host::Local, &repos.app, "no-such-branch").await
    else {
        panic!("an unknown branch must be refused");
    };
    assert_eq!(
        message,
        format!(
            "\"no-such-branch\" is not a branch, tag or commit of {}",
            repos.app.display()
        )
    );
    assert!(git::validate_ref("feature/login-v2.1+fix_3").is_ok());
    assert!(Sha::parse("abc").is_err());
}

// ---------------------------------------------------------- systemd + probe

/// A tiny web app under a real unit: python's http.server serving `site/`,
/// whose `health` file says which version runs.
struct WebUnit {
    systemctl: Systemctl,
    port: u16,
}

fn web_unit(sandbox: &Sandbox, version: &str) -> WebUnit {
    let site = sandbox.dir().join("site");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("health"), format!("ok {version}\n")).unwrap();
    let port = free_port();
    sandbox.install_unit(
        "web.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory {} {port}\n",
            site.display()
        ),
    );
    let via = [
        "nsenter",
        "-t",
        &sandbox.pid().to_string(),
        "-m",
        "-p",
        "--",
    ]
    .map(str::to_owned)
    .to_vec();
    WebUnit {
        systemctl: Systemctl::via(via),
        port,
    }
}

fn health(port: u16, path: &str, expect: Option<&str>, timeout: Duration) -> Health {
    Health {
        name: None,
        url: format!("http://127.0.0.1:{port}{path}"),
        expect: expect.map(str::to_owned),
        timeout,
        interval: None,
    }
}

const UNIT_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn restart_waits_active_reports_status_and_the_probe_passes() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    let web = web_unit(&sandbox, "v1");
    let units = ["web.service".to_owned()];

    web.systemctl.restart(&units, UNIT_TIMEOUT).await.unwrap();
    let first = web
        .systemctl
        .wait_active("web.service", UNIT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(first.state(), "active (running)");
    assert_eq!((first.n_restarts, first.result.as_str()), (0, "success"));
    assert!(
        first.main_pid.is_some() && first.since.is_some(),
        "{first:?}"
    );

    let healthy = probe::check(&health(web.port, "/health", Some("ok v1"), UNIT_TIMEOUT))
        .await
        .unwrap();
    assert_eq!(healthy.status, 200);

    web.systemctl.restart(&units, UNIT_TIMEOUT).await.unwrap();
    let second = web
        .systemctl
        .wait_active("web.service", UNIT_TIMEOUT)
        .await
        .unwrap();
    assert_ne!(
        second.main_pid, first.main_pid,
        "restart must start a new process"
    );
}

#[tokio::test]
async fn a_unit_that_fails_is_reported_with_its_result() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    let web = web_unit(&sandbox, "v1");
    // oneshot: `systemctl restart` waits for the exit, so the failure is
    // certain when it returns (a simple service is "active" until it exits).
    sandbox.install_unit(
        "broken.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo cannot open database >&2; exit 3'\n",
    );

    let Err(Error::Unavailable(message)) = web
        .systemctl
        .restart(&["broken.service".to_owned()], UNIT_TIMEOUT)
        .await
    else {
        panic!("a failing unit must fail the restart");
    };
    assert_eq!(
        message,
        "broken.service failed to start: Result=exit-code, NRestarts=0; see its journal (journalctl -u broken.service)"
    );
    let Err(Error::Unavailable(waited)) = web
        .systemctl
        .wait_active("broken.service", UNIT_TIMEOUT)
        .await
    else {
        panic!("wait_active must report the failure");
    };
    assert_eq!(waited, message);
    let status = web.systemctl.status("broken.service").await.unwrap();
    assert_eq!(
        (status.active_state.as_str(), status.result.as_str()),
        ("failed", "exit-code")
    );
    sandbox.wait_for_journal("broken.service", "cannot open database", UNIT_TIMEOUT);

    let Err(Error::NotFound(message)) = web.systemctl.status("ghost.service").await else {
        panic!("an unknown unit must be reported");
    };
    assert_eq!(
        message,
        "ghost.service is not installed on this host (systemd does not know it)"
    );
}

#[tokio::test]
async fn the_probe_reports_a_wrong_body_an_error_status_and_silence() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    let web = web_unit(&sandbox, "v1");
    web.systemctl
        .restart(&["web.service".to_owned()], UNIT_TIMEOUT)
        .await
        .unwrap();
    web.systemctl
        .wait_active("web.service", UNIT_TIMEOUT)
        .await
        .unwrap();
    probe::check(&health(web.port, "/health", None, UNIT_TIMEOUT))
        .await
        .unwrap();

    let short = Duration::from_millis(500);
    let failures = [
        (
            health(web.port, "/health", Some("ok v2"), short),
            "the body does not contain \"ok v2\"",
        ),
        (
            health(web.port, "/missing", None, short),
            "it answered 404 Not Found",
        ),
        (
            health(free_port(), "/health", None, short),
            "nothing answers there",
        ),
    ];
    for (check, why) in failures {
        let Err(Error::Unavailable(message)) = probe::check(&check).await else {
            panic!("{} must fail", check.url);
        };
        assert!(
            message.starts_with(&format!("health check {} failed ", check.url)),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
    }
}
