//! Secret rotation (issue 5): real env files, a real opsdeck (in process and
//! as the real binary, killed with SIGKILL at exact points of a rotation),
//! a test Gitea API, and a real systemd restarting a service that reports
//! a hash of its secret (`tests/secrets_sandbox.rs`).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use opsdeck::auth::Role;
use opsdeck::host::envfile;
use opsdeck::jobs::State;
use support::gitea::{FakeGitea, Hook};
use support::server::{self, Server};

/// An env file as people write them: comments, quoting, `export`, blank lines.
const ENV: &str = "# web settings\nGITEA_URL=https://git.example.org\n\nexport SECRET_KEY='old secret value 1234' # rotated monthly\nWEBHOOK_SECRET=\"old-webhook-secret-5678\"\nPORT=8000\n";

struct Fixture {
    server: Server,
    gitea: FakeGitea,
    env: PathBuf,
    owner: String,
    _dir: tempfile::TempDir,
}

/// An opsdeck with app `web` (env file `ENV`, owned by 4242:4242, mode
/// 0600), three secrets and an action that prints the env file, and a
/// test Gitea whose `org/web` has a Gitea webhook (id 1) and a Slack one.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, ENV).unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&env, Some(4242), Some(4242)).unwrap();
    }
    let gitea = FakeGitea::start().await;
    gitea.with_repo("org/web", |repo| {
        repo.hooks = vec![
            Hook::new(
                1,
                "gitea",
                "old-webhook-secret-5678",
                &["push", "pull_request"],
            ),
            Hook::new(2, "slack", "", &["push"]),
        ]
    });
    let server = server::start(&format!(
        r#"{auth}[[app]]
name = "web"
env_file = "{env}"

[[app.secret]]
name = "SECRET_KEY"
generate = "hex:32"
note = "Everyone signed in is signed out."
keep_backups = 2

[[app.secret]]
name = "WEBHOOK_SECRET"
generate = "base64url:32"
gitea_webhook = {{ repo = "org/web" }}

[[app.secret]]
name = "DEPLOY_HOOK_SECRET"
generate = "hex:16"
gitea_webhook = {{ repo = "org/web" }}
restore_on_failure = false

[[app.secret]]
name = "API_TOKEN"
generate = "alnum:40"
role = "admin"

[[app.action]]
name = "show-env"
run = ["cat", "{env}"]
"#,
        auth = gitea.auth_config(dir.path()),
        env = env.display(),
    ))
    .await;
    let owner = server.token("ops", Role::Owner).await;
    Fixture {
        server,
        gitea,
        env,
        owner,
        _dir: dir,
    }
}

impl Fixture {
    async fn rotate(&self, name: &str, token: &str) -> reqwest::Response {
        server::client()
            .post(
                self.server
                    .at(&format!("/api/apps/web/secrets/{name}/rotate")),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Rotates as the owner; the job and how it ended.
    async fn rotated(&self, name: &str) -> (i64, State) {
        let res = self.rotate(name, &self.owner).await;
        assert_eq!(res.status(), 202);
        let job = server::json(res).await["job"].as_i64().unwrap();
        (job, self.server.finished(job).await)
    }

    async fn output(&self, job: i64) -> String {
        self.server
            .get_as(&format!("/api/jobs/{job}/output"), &self.owner)
            .await
            .text()
            .await
            .unwrap()
    }

    fn hook(&self, id: i64) -> Hook {
        self.gitea
            .with_repo("org/web", |repo| {
                repo.hooks.iter().find(|h| h.id == id).cloned()
            })
            .unwrap()
    }

    fn value(&self, key: &str) -> String {
        let text = std::fs::read_to_string(&self.env).unwrap();
        envfile::get(&self.env, &text, key).unwrap().unwrap()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[tokio::test]
async fn rotation_changes_only_that_key_keeps_mode_and_owner_and_backs_up() {
    let f = fixture().await;
    let before = std::fs::metadata(&f.env).unwrap();
    let (job, state) = f.rotated("SECRET_KEY").await;
    assert_eq!(state, State::Succeeded, "{}", f.output(job).await);

    let value = f.value("SECRET_KEY");
    assert_eq!(value.len(), 64);
    assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
    let after = std::fs::read_to_string(&f.env).unwrap();
    assert_eq!(
        after,
        ENV.replace("'old secret value 1234'", &value),
        "one value changed; comments, order, quoting and every other byte are as they were"
    );
    let meta = std::fs::metadata(&f.env).unwrap();
    assert_eq!(mode(&f.env), 0o600);
    assert_eq!((meta.uid(), meta.gid()), (before.uid(), before.gid()));
    let backups = envfile::backups(&f.env).unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(mode(&backups[0]), 0o600);
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), ENV);

    // The output and the audit log say what happened by fingerprint.
    let fingerprint = f.server.ctx.server_key.fingerprint(&value);
    let output = f.output(job).await;
    assert!(
        output.contains("SECRET_KEY changed from sha256:"),
        "{output}"
    );
    assert!(output.contains(&fingerprint), "{output}");
    assert!(
        !output.contains(&value) && !output.contains("old secret value"),
        "{output}"
    );
    let audit: String = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'secret.rotate' AND job_id = ?",
    )
    .bind(job)
    .fetch_one(&f.server.ctx.db)
    .await
    .unwrap();
    assert!(
        audit.contains(&fingerprint) && !audit.contains(&value),
        "{audit}"
    );

    // The page: fingerprint, who and when, the note in the confirmation.
    let page = f
        .server
        .get_as("/apps/web", &f.owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&fingerprint), "{page}");
    assert!(page.contains("by token:ops"), "{page}");
    assert!(page.contains("Everyone signed in is signed out."), "{page}");
    assert!(
        page.contains("/apps/web/secrets/SECRET_KEY/rotate"),
        "{page}"
    );
    assert!(!page.contains(&value) && !page.contains("old-webhook-secret-5678"));

    // Backups are kept to `keep_backups` (2).
    for _ in 0..3 {
        assert_eq!(f.rotated("SECRET_KEY").await.1, State::Succeeded);
    }
    assert_eq!(envfile::backups(&f.env).unwrap().len(), 2);
}

#[tokio::test]
async fn every_job_of_the_app_masks_the_env_files_values() {
    let f = fixture().await;
    let res = server::client()
        .post(f.server.at("/api/apps/web/actions/show-env/run"))
        .bearer_auth(&f.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(f.server.finished(job).await, State::Succeeded);
    let output = f.output(job).await;
    assert!(
        output.contains("export SECRET_KEY='[redacted]' # rotated monthly"),
        "{output}"
    );
    assert!(output.contains("WEBHOOK_SECRET=\"[redacted]\""), "{output}");
    assert!(output.contains("GITEA_URL=[redacted]"), "{output}");
    assert!(
        output.contains("PORT=8000"),
        "short plain values stay: {output}"
    );
}

#[tokio::test]
async fn the_gitea_webhook_changes_in_the_same_job_and_a_failure_there_restores_the_app() {
    let f = fixture().await;
    let (job, state) = f.rotated("WEBHOOK_SECRET").await;
    assert_eq!(state, State::Succeeded, "{}", f.output(job).await);
    let value = f.value("WEBHOOK_SECRET");
    let hook = f.hook(1);
    assert_eq!(hook.secret, value, "Gitea signs with the app's new secret");
    assert_eq!(
        hook.events,
        ["push", "pull_request"],
        "the edit kept the events"
    );
    assert_eq!((hook.branch_filter.as_str(), hook.active), ("main", true));
    assert_eq!(f.hook(2).secret, "", "the Slack hook is not touched");
    let output = f.output(job).await;
    assert!(
        output.contains("webhook 1 of org/web now signs with WEBHOOK_SECRET (sha256:"),
        "{output}"
    );
    assert!(!output.contains(&value));

    // Gitea fails: the job fails and the app's file is as it was.
    f.gitea
        .with_repo("org/web", |repo| repo.failing_edits = true);
    let before = std::fs::read(&f.env).unwrap();
    let (job, state) = f.rotated("WEBHOOK_SECRET").await;
    assert_eq!(state, State::Failed);
    assert_eq!(
        std::fs::read(&f.env).unwrap(),
        before,
        "the app side is restored"
    );
    assert_eq!(f.hook(1).secret, value);
    let output = f.output(job).await;
    assert!(
        output.contains(
            "Gitea refused /api/v1/repos/org/web/hooks/1 500 Internal Server Error: UpdateWebhook: database is locked"
        ),
        "{output}"
    );
    assert!(
        output.contains("this job changed no webhook of org/web; nothing to put back"),
        "{output}"
    );
    let summary = f.server.ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(
        summary,
        "step \"Give the Gitea webhooks of org/web the new WEBHOOK_SECRET\" failed; the recovery steps succeeded"
    );

    // `restore_on_failure = false`: the new value stays, nothing is undone.
    let (job, state) = f.rotated("DEPLOY_HOOK_SECRET").await;
    assert_eq!(state, State::Failed);
    assert_eq!(f.value("DEPLOY_HOOK_SECRET").len(), 32);
    let summary = f.server.ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(
        summary,
        "step \"Give the Gitea webhooks of org/web the new DEPLOY_HOOK_SECRET\" failed"
    );
}

#[tokio::test]
async fn unknown_secrets_underprivileged_actors_and_unparseable_files_are_refused() {
    let f = fixture().await;
    let res = f.rotate("NO_SUCH", &f.owner).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        server::json(res).await["error"],
        "web has no secret named \"NO_SUCH\""
    );

    for role in [Role::Viewer, Role::Operator] {
        let token = f.server.token(role.as_str(), role).await;
        let res = f.rotate("SECRET_KEY", &token).await;
        assert_eq!(res.status(), 403);
        let denied: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_events WHERE action = 'rotate' AND outcome = 'denied' AND actor = ?",
        )
        .bind(format!("token:{role}"))
        .fetch_one(&f.server.ctx.db)
        .await
        .unwrap();
        assert_eq!(denied, 1, "{role}");
    }
    // A secret's own role: API_TOKEN needs admin only.
    let admin = f.server.token("admin", Role::Admin).await;
    assert_eq!(f.rotate("SECRET_KEY", &admin).await.status(), 403);
    let res = f.rotate("API_TOKEN", &admin).await;
    assert_eq!(res.status(), 202);
    let job = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(f.server.finished(job).await, State::Succeeded);
    assert_eq!(f.value("API_TOKEN").len(), 40, "a missing key is added");
    assert_eq!(f.server.job_count().await, 1, "refusals queue nothing");

    let broken = "A=1\nB=2\nthis is not an assignment\nSECRET_KEY=x\n";
    std::fs::write(&f.env, broken).unwrap();
    let backups = envfile::backups(&f.env).unwrap().len();
    let (job, state) = f.rotated("SECRET_KEY").await;
    assert_eq!(state, State::Failed);
    let output = f.output(job).await;
    assert!(
        output.contains(&format!(
            "{}: line 3 cannot be parsed (expected KEY=value, found no '='); the file was left untouched",
            f.env.display()
        )),
        "{output}"
    );
    assert_eq!(std::fs::read_to_string(&f.env).unwrap(), broken);
    assert_eq!(
        envfile::backups(&f.env).unwrap().len(),
        backups,
        "no backup either"
    );
}

#[tokio::test]
async fn the_demo_has_a_secret_to_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let config = opsdeck::demo::prepare(dir.path()).unwrap();
    // The rotation's health check asks the demo service: start it, owned
    // by this test (it ends with it), as `opsdeck demo` would.
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["demo-service", "restart", "--dir"])
        .arg(dir.path())
        .args(["--owner", &std::process::id().to_string()])
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let env = config.app("demo-app").unwrap().env_file.clone().unwrap();
    assert_eq!(mode(&env), 0o600);
    let ctx = opsdeck::Context::start(config).await.unwrap();
    let owner = support::deck::actor("demo", Role::Owner);
    let job = opsdeck::ops::secrets::rotate(&ctx, &owner, "demo-app", "SECRET_KEY")
        .await
        .unwrap();
    let mut follower = ctx.jobs.follow(job, 0).await.unwrap();
    let state = loop {
        if let Some(opsdeck::jobs::Followed::End(state)) = follower.next().await.unwrap() {
            break state;
        }
    };
    assert_eq!(state, State::Succeeded);
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(!text.contains("demo-secret-change-me"), "{text}");
}
