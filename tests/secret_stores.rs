//! The other places a secret lives (issue 23): a `store` command that gets
//! the value on its standard input and nowhere else (a real program that
//! records its stdin, argv and environment; as the app's own account too),
//! and GitHub repository webhooks, changed through a GitHub API stand-in
//! and put back, with Gitea's and the env file, when GitHub fails.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use opsdeck::auth::Role;
use opsdeck::host::envfile;
use opsdeck::jobs::State;
use support::account::Account;
use support::gitea::{self, FakeGitea};
use support::github::{self, FakeGithub};
use support::server::{self, Server};
use support::store::{self, Records};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn value(env: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(env).unwrap();
    envfile::get(env, &text, key).unwrap().unwrap()
}

/// A directory every account may enter, with the store script, an env
/// file (0600) holding `env` in its own directory `app`, and an empty
/// `records` directory.
fn files(env: &str) -> (tempfile::TempDir, PathBuf, PathBuf, Records) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (script, records) = store::recorder(dir.path());
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let env_file = dir.path().join("app/.env");
    std::fs::write(&env_file, env).unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, script, env_file, records)
}

/// An opsdeck whose app `community` (with `app_lines`) has SESSION_SECRET
/// made by `generate` and kept by the recording store; `args` follow the
/// store's records directory. The server and an owner's token.
async fn community(
    app_lines: &str,
    generate: &str,
    (script, records): (&Path, &Records),
    args: &str,
) -> (Server, String) {
    let server = server::start(&format!(
        r#"[[app]]
name = "community"
{app_lines}
[[app.secret]]
name = "SESSION_SECRET"
generate = "{generate}"
store = {{ run = ["python3", "{script}", "{records}"{args}] }}
"#,
        script = script.display(),
        records = records.0.display(),
    ))
    .await;
    let owner = server.token("ops", Role::Owner).await;
    (server, owner)
}

async fn rotate(server: &Server, token: &str, app: &str, secret: &str) -> (i64, State, String) {
    let res = server::client()
        .post(server.at(&format!("/api/apps/{app}/secrets/{secret}/rotate")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job = server::json(res).await["job"].as_i64().unwrap();
    let (state, output) = server.outcome(job).await;
    (job, state, output)
}

async fn summary(server: &Server, job: i64) -> String {
    server.ctx.jobs.job(job).await.unwrap().summary.unwrap()
}

#[tokio::test]
async fn a_store_gets_the_value_on_stdin_only_and_its_refusal_restores_the_env_file() {
    let (dir, script, env, records) =
        files("SESSION_SECRET=first-session-secret-0123\nPORT=3000\n");
    let (server, owner) = community(
        &format!("env_file = {:?}\n", env.display().to_string()),
        "base64url:32",
        (&script, &records),
        r#", "--app", "communityrule""#,
    )
    .await;

    let (job, state, output) = rotate(&server, &owner, "community", "SESSION_SECRET").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let new = value(&env, "SESSION_SECRET");
    assert_eq!(new.len(), 43);
    assert_eq!(records.runs(), 1);
    assert_eq!(
        records.stdin(0),
        new,
        "the value, and nothing after it, on stdin"
    );
    assert!(!contains(&records.read(0, "argv"), &new), "not in argv");
    assert!(
        !contains(&records.read(0, "environ"), &new),
        "not in the environment"
    );
    let argv: Vec<String> = serde_json::from_slice(&records.read(0, "argv")).unwrap();
    assert_eq!(
        argv[1..],
        [&records.0.display().to_string(), "--app", "communityrule"]
    );
    let fingerprint = server.ctx.server_key.fingerprint(&new);
    assert!(
        output.contains(&format!(
            "the store now holds SESSION_SECRET ({fingerprint})"
        )),
        "{output}"
    );
    assert!(
        output.contains("SESSION_SECRET set; restarting the app"),
        "{output}"
    );
    assert!(!output.contains(&new), "{output}");
    let audit: String = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'secret.store' AND job_id = ?",
    )
    .bind(job)
    .fetch_one(&server.ctx.db)
    .await
    .unwrap();
    assert!(
        audit.contains(&fingerprint) && !audit.contains(&new),
        "{audit}"
    );

    // The store refuses: the job fails saying so, and the env file is as
    // it was; the store, which refused, is not asked again.
    std::fs::write(records.0.join("fail"), "").unwrap();
    let before = std::fs::read(&env).unwrap();
    let (job, state, output) = rotate(&server, &owner, "community", "SESSION_SECRET").await;
    assert_eq!(state, State::Failed, "{output}");
    assert_eq!(
        std::fs::read(&env).unwrap(),
        before,
        "the env file is restored"
    );
    assert_eq!(records.runs(), 2);
    assert!(
        output.contains("cloudron: the app is busy updating, try again later"),
        "{output}"
    );
    let command = format!(
        "python3 {} {} --app communityrule",
        script.display(),
        records.0.display()
    );
    assert!(
        output.contains(&format!(
            "the store command `{command}` exited with code 1 on this host: the store refused the value"
        )),
        "{output}"
    );
    assert!(
        output.contains("this job did not change the store of SESSION_SECRET; nothing to put back"),
        "{output}"
    );
    assert_eq!(
        summary(&server, job).await,
        format!(
            "step \"Hand the new SESSION_SECRET to {command}\" failed; the recovery steps succeeded"
        )
    );
    drop(dir);
}

#[tokio::test]
async fn a_secret_kept_by_its_store_alone_is_made_in_the_step() {
    let (_dir, script, _env, records) = files("");
    let (server, owner) = community("", "hex:24", (&script, &records), "").await;
    let (_, state, output) = rotate(&server, &owner, "community", "SESSION_SECRET").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let handed = records.stdin(0);
    assert_eq!(handed.len(), 48);
    assert!(handed.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        !output.contains(&handed),
        "the job's output masks it: {output}"
    );
    assert!(
        output.contains("opsdeck never knew its previous value"),
        "{output}"
    );
    let page = server
        .get_as("/apps/community", &owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("kept by its store only"), "{page}");
    assert!(!page.contains(&handed));
}

#[tokio::test]
async fn a_store_runs_as_the_apps_user() {
    let Some(account) = Account::new("opsdeck-t23s") else {
        return;
    };
    let (_dir, script, env, records) = files("SESSION_SECRET=first-session-secret-0123\n");
    // The app's account owns its directory (backups are made beside the
    // env file) and the store's.
    account.own(env.parent().unwrap());
    account.own(&records.0);
    let app_lines = format!(
        "user = {:?}\nenv_file = {:?}\n",
        account.name,
        env.display().to_string()
    );
    let (server, owner) = community(&app_lines, "alnum:32", (&script, &records), "").await;
    let (_, state, output) = rotate(&server, &owner, "community", "SESSION_SECRET").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let new = value(&env, "SESSION_SECRET");
    assert_eq!(records.stdin(0), new);
    assert_eq!(
        String::from_utf8(records.read(0, "uid")).unwrap(),
        account.uid.to_string()
    );
    assert!(!contains(&records.read(0, "argv"), &new));
    assert!(!contains(&records.read(0, "environ"), &new));
}

/// SITG's bot: its webhook secret in the env file, Gitea's mirror webhook,
/// the GitHub repository's webhooks to the bot (two) beside a CI hook to
/// another URL, and a store; and a second secret for every signed hook of
/// another repository.
struct Bot {
    server: Server,
    gitea: FakeGitea,
    github: FakeGithub,
    env: PathBuf,
    records: Records,
    owner: String,
    _dir: tempfile::TempDir,
}

const HOOK_URL: &str = "https://bot.example.org/webhooks/github";

async fn bot() -> Bot {
    let (dir, script, env, records) = files(
        "GITHUB_WEBHOOK_SECRET=first-github-secret-0123456789\nRELAY_SECRET=first-relay-secret-0123\n",
    );
    let gitea = FakeGitea::start().await;
    gitea.with_repo("org/bot", |repo| {
        repo.hooks = vec![gitea::Hook::new(
            1,
            "gitea",
            "first-github-secret-0123456789",
            &["push"],
        )]
    });
    let github = FakeGithub::start().await;
    github.with_repo("sitg/bot", |repo| {
        let mut paused =
            github::Hook::new(12, HOOK_URL, "first-github-secret-0123456789", &["push"]);
        paused.active = false;
        paused.content_type = "form".into();
        repo.hooks = vec![
            github::Hook::new(
                11,
                HOOK_URL,
                "first-github-secret-0123456789",
                &["pull_request", "issue_comment"],
            ),
            paused,
            github::Hook::new(13, "https://ci.example.org/hook", "ci-secret", &["push"]),
        ];
    });
    github.with_repo("sitg/relay", |repo| {
        repo.hooks = vec![
            github::Hook::new(21, "https://relay.example.org/a", "relay-old", &["push"]),
            github::Hook::new(22, "https://chat.example.org/b", "", &["push"]),
        ];
    });
    let auth = format!(
        "{}\n{}\n",
        gitea.auth_config(dir.path()).trim_end(),
        github.auth_lines(dir.path())
    );
    let server = server::start(&format!(
        r#"{auth}[[app]]
name = "bot"
env_file = "{env}"

[[app.secret]]
name = "GITHUB_WEBHOOK_SECRET"
generate = "hex:32"
gitea_webhook = {{ repo = "org/bot" }}
github_webhook = {{ repo = "sitg/bot", url = "{HOOK_URL}" }}
store = {{ run = ["python3", "{script}", "{records}"] }}

[[app.secret]]
name = "RELAY_SECRET"
generate = "hex:16"
github_webhook = {{ repo = "sitg/relay" }}
"#,
        env = env.display(),
        script = script.display(),
        records = records.0.display(),
    ))
    .await;
    let owner = server.token("ops", Role::Owner).await;
    Bot {
        server,
        gitea,
        github,
        env,
        records,
        owner,
        _dir: dir,
    }
}

impl Bot {
    fn gitea_secret(&self) -> String {
        self.gitea
            .with_repo("org/bot", |repo| repo.hooks[0].secret.clone())
    }
}

#[tokio::test]
async fn github_webhooks_get_the_new_secret_keeping_events_and_active() {
    let b = bot().await;
    let (_, state, output) = rotate(&b.server, &b.owner, "bot", "GITHUB_WEBHOOK_SECRET").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let new = value(&b.env, "GITHUB_WEBHOOK_SECRET");
    assert_eq!(b.gitea_secret(), new);
    let (eleven, twelve) = (b.github.hook("sitg/bot", 11), b.github.hook("sitg/bot", 12));
    assert_eq!(
        (eleven.secret.as_str(), twelve.secret.as_str()),
        (new.as_str(), new.as_str())
    );
    assert_eq!(eleven.events, ["pull_request", "issue_comment"]);
    assert!(eleven.active);
    assert_eq!(twelve.events, ["push"]);
    assert!(!twelve.active, "a paused hook stays paused");
    assert_eq!(
        (twelve.content_type.as_str(), twelve.url.as_str()),
        ("form", HOOK_URL)
    );
    assert_eq!(
        b.github.hook("sitg/bot", 13).secret,
        "ci-secret",
        "a hook to another URL is not touched"
    );
    assert!(
        output.contains(
            "GitHub webhook 11 of sitg/bot now signs with GITHUB_WEBHOOK_SECRET (sha256:"
        ),
        "{output}"
    );
    assert!(!output.contains(&new));

    // GitHub was asked as its API wants to be, and never shown the value
    // but in the edits.
    let requests = b.github.requests();
    let methods: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.uri.as_str()))
        .collect();
    assert_eq!(
        methods,
        [
            ("GET", "/repos/sitg/bot/hooks?per_page=100&page=1"),
            ("PATCH", "/repos/sitg/bot/hooks/11"),
            ("PATCH", "/repos/sitg/bot/hooks/12"),
        ]
    );
    for r in &requests {
        assert_eq!(r.accept, "application/vnd.github+json");
        assert_eq!(r.api_version, "2022-11-28");
        assert!(r.user_agent.starts_with("opsdeck/"), "{}", r.user_agent);
    }
    let edit = requests[2].body.clone().unwrap();
    assert_eq!(edit["config"]["secret"], new.as_str());
    assert_eq!(edit["config"]["url"], HOOK_URL);
    assert_eq!(edit["config"]["insecure_ssl"], "0");
    assert_eq!(edit["events"], serde_json::json!(["push"]));
    assert_eq!(edit["active"], false);

    // Without `url`: every hook of the repository that has a secret.
    let (_, state, output) = rotate(&b.server, &b.owner, "bot", "RELAY_SECRET").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let relay = value(&b.env, "RELAY_SECRET");
    assert_eq!(b.github.hook("sitg/relay", 21).secret, relay);
    assert_eq!(
        b.github.hook("sitg/relay", 22).secret,
        "",
        "an unsigned hook stays so"
    );

    // The app page names where the secret lives.
    let page = b
        .server
        .get_as("/apps/bot", &b.owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("and the GitHub webhooks of sitg/bot"),
        "{page}"
    );
    assert!(page.contains("and its store <code>python3"), "{page}");
}

#[tokio::test]
async fn a_github_failure_puts_back_the_env_file_the_store_and_every_hook_changed() {
    let b = bot().await;
    let first = "first-github-secret-0123456789";
    // GitHub takes hook 11's edit, then fails on hook 12's.
    b.github
        .with_repo("sitg/bot", |repo| repo.failing_hooks = vec![12]);
    let before = std::fs::read(&b.env).unwrap();
    let (job, state, output) = rotate(&b.server, &b.owner, "bot", "GITHUB_WEBHOOK_SECRET").await;
    assert_eq!(state, State::Failed, "{output}");
    assert_eq!(
        std::fs::read(&b.env).unwrap(),
        before,
        "the env file is restored"
    );
    assert_eq!(b.gitea_secret(), first, "Gitea's hook is put back");
    assert_eq!(
        b.github.hook("sitg/bot", 11).secret,
        first,
        "GitHub's hook 11 is put back"
    );
    assert_eq!(b.github.hook("sitg/bot", 12).secret, first);
    let eleven = b.github.hook("sitg/bot", 11);
    assert_eq!(eleven.events, ["pull_request", "issue_comment"]);
    // The store had the new value; it was handed the previous one again.
    assert_eq!(b.records.runs(), 2);
    assert_ne!(b.records.stdin(0), first);
    assert_eq!(b.records.stdin(1), first);
    assert!(
        output.contains(
            "GitHub refused /repos/sitg/bot/hooks/12 500 Internal Server Error: Server Error"
        ),
        "{output}"
    );
    for line in [
        "webhook 1 of org/bot signs with GITHUB_WEBHOOK_SECRET (sha256:",
        "GitHub webhook 11 of sitg/bot signs with GITHUB_WEBHOOK_SECRET (sha256:",
        "the store holds the previous GITHUB_WEBHOOK_SECRET (sha256:",
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }
    assert!(!output.contains(&b.records.stdin(0)), "{output}");
    assert_eq!(
        summary(&b.server, job).await,
        "step \"Give the GitHub webhooks of sitg/bot the new GITHUB_WEBHOOK_SECRET\" failed; the recovery steps succeeded"
    );
}

#[test]
fn configs_that_could_leak_or_cannot_work_are_refused() {
    let check = |secret: &str, auth: &str| {
        let text = format!(
            "{auth}\n[[app]]\nname = \"a\"\nenv_file = \"/srv/a/.env\"\n\n[[app.secret]]\nname = \"K\"\n{secret}\n"
        );
        match opsdeck::config::Config::parse(&text, Path::new("opsdeck.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let refused = check(
        "generate = \"hex:32\"\nstore = { run = [\"cloudron\", \"env\", \"set\", \"K={value}\"] }",
        "",
    );
    assert!(
        refused.contains("the new value reaches the store command on its standard input only, never in its arguments: {value} is not filled in"),
        "{refused}"
    );
    let refused = check(
        "generate = \"hex:32\"\ngithub_webhook = { repo = \"sitg/bot\" }",
        "",
    );
    assert!(
        refused.contains("this calls the GitHub API, so it needs a token: set `auth.github_token_file` or OPSDECK_GITHUB_TOKEN"),
        "{refused}"
    );
    let refused = check(
        "generate = \"hex:32\"\ngithub_webhook = { repo = \"not a repo\", url = \"ftp://x\" }",
        "[auth]\ngithub_token_file = \"/etc/opsdeck/github_token\"\ngithub_api = \"api.github.com\"",
    );
    for expected in [
        "expected a GitHub repository as \"owner/name\", found \"not a repo\"",
        "expected an http:// or https:// URL like \"https://ops.example.org\", found \"ftp://x\"",
        "auth.github_api",
    ] {
        assert!(refused.contains(expected), "{expected}: {refused}");
    }
    let refused = check("generate = \"set\"\nschedule = \"0 3 1 * *\"", "");
    assert!(
        refused.contains("a scheduled rotation makes the new value itself, with nobody there"),
        "{refused}"
    );
    let refused = check(
        "generate = \"hex:32\"\nmax_age = \"0d\"\ntimezone = \"UTC\"",
        "",
    );
    assert!(
        refused.contains("expected a duration longer than 0"),
        "{refused}"
    );
    assert!(
        refused.contains("`timezone` only applies to a `schedule`"),
        "{refused}"
    );
    // A store alone needs no env file; a webhook does.
    let text = "[[app]]\nname = \"a\"\n\n[[app.secret]]\nname = \"K\"\ngenerate = \"hex:32\"\nstore = { run = [\"vault\", \"kv\", \"put\", \"secret/a\", \"K=-\"] }\n";
    assert!(opsdeck::config::Config::parse(text, Path::new("opsdeck.toml")).is_ok());
    let text = format!("{text}gitea_webhook = {{ repo = \"org/a\" }}\n");
    let refused = opsdeck::config::Config::parse(&text, Path::new("opsdeck.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(
            "the webhook gets the value from the env file; set `env_file` on the app (or on the secret)"
        ),
        "{refused}"
    );
    // Kept by a store alone, a value must be made by opsdeck; a key file
    // is a whole file, no store's value.
    let text = text.replace("generate = \"hex:32\"", "generate = \"set\"");
    let refused = opsdeck::config::Config::parse(&text, Path::new("opsdeck.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("a secret kept by its `store` alone (no env file) is made by opsdeck"),
        "{refused}"
    );
    let refused = check(
        "file = \"/srv/a/key.pem\"\ngenerate = \"ed25519\"\nstore = { run = [\"vault\"] }",
        "",
    );
    assert!(
        refused
            .contains("`store` is for a value in an env file; a `file` secret is the whole file"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_store_gets_the_variable_of_the_secrets_own_env_file() {
    let (dir, script, app_env, records) = files("OTHER=unrelated-value-0000\n");
    // One bot's env file, holding the variable under its own name.
    let bot_env = dir.path().join("app/bot-alice.env");
    std::fs::write(&bot_env, "GITHUB_WEBHOOK_SECRET=alice-first-secret-0123\n").unwrap();
    let app_lines = format!(
        "env_file = {:?}\n\n[[app.secret]]\nname = \"ALICE_WEBHOOK\"\nenv_file = {:?}\nkey = \"GITHUB_WEBHOOK_SECRET\"\ngenerate = \"hex:32\"\nstore = {{ run = [\"python3\", {:?}, {:?}] }}\n",
        app_env.display().to_string(),
        bot_env.display().to_string(),
        script.display().to_string(),
        records.0.display().to_string(),
    );
    let (server, owner) = community(&app_lines, "hex:16", (&script, &records), "").await;
    let (_, state, output) = rotate(&server, &owner, "community", "ALICE_WEBHOOK").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let new = value(&bot_env, "GITHUB_WEBHOOK_SECRET");
    assert_ne!(new, "alice-first-secret-0123");
    assert_eq!(records.stdin(0), new, "the store got the bot's variable");
    assert_eq!(
        std::fs::read_to_string(&app_env).unwrap(),
        "OTHER=unrelated-value-0000\n"
    );
}
