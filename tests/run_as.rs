//! `user = "…"` on an app: every step runs as that account through
//! `sudo -n -u`, as the runbooks' `sudo -u rfc-app …` do. Run as root with
//! a real unprivileged account made for the test (and removed after it):
//! git, a build step, an action, a secret rotation, a sqlite-backup
//! sweep and a restore of its backup, each checked by who owns what it
//! wrote.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use opsdeck::jobs::State;
use opsdeck::ops::{actions, deploy, secrets, sweeps};
use support::account::Account;
use support::repos::Repos;
use support::server;
use support::webapp::ada;

fn owner_and_mode(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.mode() & 0o7777)
}

#[tokio::test]
async fn every_step_of_an_app_with_a_user_runs_as_that_user() {
    let Some(account) = Account::new("opsdeck-t19") else {
        return;
    };
    let user = &account.name;
    let repos = Repos::new();
    // The test's directories are root's 0700 temp dirs: the app's account
    // reads the origin and owns its work tree, as /opt/rfc-app would be.
    let top = repos.app.parent().unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(top)
        .status()
        .unwrap();
    account.own(&repos.app);
    let files = tempfile::tempdir().unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = files.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("app.db");
    let made = Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);")
        .status()
        .unwrap();
    assert!(made.success());
    let env = data.join("app.env");
    std::fs::write(&env, "SECRET_KEY=old\n").unwrap();
    account.own(&data);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o640)).unwrap();

    let server = server::start(&format!(
        r#"
[[app]]
name = "rfc"
repo = "{app}"
user = "{user}"
env_file = "{env}"

[[app.build]]
run = ["sh", "-c", "id -un > built-by"]

[[app.action]]
name = "whoami"
run = ["sh", "-c", "echo \"as $(id -un) in $(pwd), umask $(umask)\""]

[[app.action]]
name = "with-env"
run = ["sh", "-c", "printf %s \"$SECRET_KEY\" > seen-key; echo \"key $SECRET_KEY as $(id -un)\""]
env_file = true

[[app.secret]]
name = "SECRET_KEY"
generate = "hex:32"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "{db}"
dir = "{backups}"
keep = 2

[[app]]
name = "nobody-here"
repo = "{app}"
user = "opsdeck-no-such-user"

[[app.action]]
name = "whoami"
run = ["id", "-un"]
"#,
        app = repos.app.display(),
        env = env.display(),
        db = db.display(),
        backups = data.join("backups").display(),
    ))
    .await;
    let ctx = &server.ctx;

    // A deploy: git fetch and checkout, then the build, as the user. (git
    // refuses a repository another account owns: the origin is the app
    // account's while it fetches, root's while the test pushes.)
    let origin = top.join("origin.git");
    repos.push("version", "v2", "Version 2");
    account.own(&origin);
    let job = deploy::request(ctx, &ada(), "rfc", "main").await.unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert_eq!(
        std::fs::read_to_string(repos.app.join("version")).unwrap(),
        "v2"
    );
    let built = repos.app.join("built-by");
    assert_eq!(
        std::fs::read_to_string(&built).unwrap().trim(),
        user.as_str()
    );
    assert_eq!(owner_and_mode(&built).0, account.uid);
    assert_eq!(owner_and_mode(&repos.app.join("version")).0, account.uid);

    // An action: as the user, in the work tree, with opsdeck's umask.
    let job = actions::run(ctx, &ada(), "rfc", "whoami").await.unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert!(
        output.contains(&format!("as {user} in {}", repos.app.display())),
        "{output}"
    );

    // A rotation keeps the env file's owner and mode.
    let job = secrets::rotate(ctx, &ada(), "rfc", "SECRET_KEY")
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(
        text.starts_with("SECRET_KEY=") && !text.contains("=old"),
        "{text}"
    );
    assert_eq!(owner_and_mode(&env), (account.uid, 0o640));

    // `env_file = true`: the file's variables reach a step run as the
    // user (on its stdin, never in sudo's command line), masked in output.
    let job = actions::run(ctx, &ada(), "rfc", "with-env").await.unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert!(
        output.contains(&format!("key [redacted] as {user}")),
        "{output}"
    );
    let key = text.trim().trim_start_matches("SECRET_KEY=");
    assert_eq!(
        std::fs::read_to_string(repos.app.join("seen-key")).unwrap(),
        key
    );

    // A sqlite-backup sweep writes its copy as the user.
    let job = sweeps::request(ctx, &ada(), "rfc", "db-backup", false)
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    let backups: Vec<_> = std::fs::read_dir(data.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(owner_and_mode(&backups[0]).0, account.uid);

    // A restore of that backup, as the user (its sqlite3, its files): the
    // row written since is gone, the database keeps owner and mode, and
    // the copy kept of it is the user's too.
    let added = Command::new("sqlite3")
        .arg(&db)
        .arg("INSERT INTO t VALUES (2);")
        .status()
        .unwrap();
    assert!(added.success());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let name = backups[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let job = opsdeck::ops::restore::request(ctx, &ada(), "rfc", "db-backup", &name)
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    let rows = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT group_concat(n) FROM t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "1");
    assert_eq!(owner_and_mode(&db), (account.uid, 0o640));
    let kept: Vec<_> = std::fs::read_dir(data.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| *p != backups[0])
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(owner_and_mode(&kept[0]).0, account.uid);

    // An account that does not exist: the step fails and says so.
    let job = actions::run(ctx, &ada(), "nobody-here", "whoami")
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Failed, "{output}");
    assert!(
        output.contains("unknown user opsdeck-no-such-user"),
        "{output}"
    );
}

/// The step's pids it printed (`pid N`), once it printed `want` of them.
async fn printed_pids(url: &str, token: &str, job: i64, want: usize) -> Vec<u32> {
    for _ in 0..500 {
        let output = support::cli::job_output(url, token, job).await;
        let pids: Vec<u32> = output
            .lines()
            .filter_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
            .collect();
        if pids.len() >= want {
            return pids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("job {job} never printed {want} pids");
}

async fn run_action(url: &str, token: &str, app: &str) -> i64 {
    let started: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/api/apps/{app}/actions/hide/run"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    started["job"].as_i64().unwrap()
}

/// A step that clears its environment (`env -i`) loses OPSDECK_JOB: the
/// process group recorded when it started still finds it after a crash,
/// run as the app's user or as opsdeck itself.
#[tokio::test]
async fn a_crash_leaves_nothing_of_a_step_that_cleared_its_environment() {
    let Some(account) = Account::new("opsdeck-t19c") else {
        return;
    };
    let hide = r#"run = ["env", "-i", "sh", "-c", "sleep 300 & echo pid $!; echo pid $$; wait"]"#;
    let instance = support::cli::Instance::new(&format!(
        "[[app]]\nname = \"as-user\"\nuser = \"{}\"\n\n[[app.action]]\nname = \"hide\"\n{hide}\n\n\
         [[app]]\nname = \"as-opsdeck\"\n\n[[app.action]]\nname = \"hide\"\n{hide}\n",
        account.name
    ));
    let token = instance.token("ci", "operator");
    let mut server = instance.serve().await;
    let jobs = [
        run_action(&server.url, &token, "as-user").await,
        run_action(&server.url, &token, "as-opsdeck").await,
    ];
    let mut pids = Vec::new();
    for job in jobs {
        pids.extend(printed_pids(&server.url, &token, job, 2).await);
    }
    let owner = |pid: u32| std::fs::metadata(format!("/proc/{pid}")).unwrap().uid();
    assert_eq!(owner(pids[0]), account.uid, "the step runs as the user");

    server.child.kill().unwrap(); // SIGKILL: no drain, no cleanup
    server.child.wait().unwrap();
    assert!(
        pids.iter().all(|&pid| !support::deck::process_gone(pid)),
        "the steps outlive the server"
    );

    let server = instance.serve().await;
    for pid in &pids {
        assert!(
            support::deck::process_gone(*pid),
            "{pid} survived the restart"
        );
    }
    for job in jobs {
        let shown = support::cli::job(&server.url, &token, job).await;
        assert_eq!(shown["state"], "interrupted");
    }
    let (status, _) = server.stop();
    assert!(status.success());
}
