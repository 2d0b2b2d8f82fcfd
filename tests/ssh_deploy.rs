//! Deploy and rollback of an app on another host: every git command, build
//! step and `systemctl` call of the job goes through a real sshd, whose
//! sessions see the systemd sandbox's units (sshd runs inside it), while
//! opsdeck checks the service's health from its own side.

mod support;

use opsdeck::Error;
use opsdeck::jobs::State;
use opsdeck::ops::{deploy, rollback};
use support::sandbox::{self, Sandbox};
use support::sshd::Sshd;
use support::webapp::{ada, answer, answer_when_up, checkout_setup, repository};

#[test]
fn a_remote_checkout_app_deploys_and_rolls_back_over_ssh() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_a_remote_checkout_app_deploys_and_rolls_back_over_ssh");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_a_remote_checkout_app_deploys_and_rolls_back_over_ssh() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let Some(sshd) = Sshd::start() else { return };
    let (repos, _v1) = repository();
    let port = support::free_port();
    let config = format!(
        "{}\n{}host = \"remote\"\n",
        sshd.hosts_toml(&sshd.known_hosts()),
        checkout_setup(&repos, port)
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
}
