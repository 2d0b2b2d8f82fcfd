//! Crash safety of a rotation: the real `opsdeck serve` kills itself with
//! SIGKILL at each named point of a rotation (`OPSDECK_CRASH_AT`: the same
//! signal as `kill -9`, at an exact point instead of a racing moment), and
//! the env file always parses, with every other byte as it was, holding the
//! old value before the rename and the new one after it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use opsdeck::host::{self, envfile};
use support::cli::Instance;

const ENV: &str = "# web settings\nGITEA_URL=https://git.example.org\n\nexport SECRET_KEY='old secret value 1234' # rotated monthly\nPORT=8000\n";

/// Every crash point of a rotation, in the order a rotation passes them,
/// and whether the new value is in place when opsdeck dies there.
const POINTS: [(&str, bool); 12] = [
    ("rotate:read", false),
    ("backup:created", false),
    ("backup:owned", false),
    ("backup:written", false),
    ("backup:synced", false),
    ("backup:linked", false),
    ("write:created", false),
    ("write:owned", false),
    ("write:written", false),
    ("write:synced", false),
    ("write:renamed", true),
    ("write:dir-synced", true),
];

#[tokio::test]
async fn kill_9_at_every_point_of_a_rotation_leaves_the_old_or_the_new_file() {
    let app = tempfile::tempdir().unwrap();
    let env = app.path().join(".env");
    std::fs::write(&env, ENV).unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    let instance = Instance::new(&format!(
        "[[app]]\nname = \"web\"\nenv_file = {:?}\n\n[[app.secret]]\nname = \"SECRET_KEY\"\ngenerate = \"hex:32\"\nkeep_backups = 50\n",
        env.display().to_string()
    ));
    let token = instance.token("ops", "owner");
    let client = reqwest::Client::new();
    let rotate = || {
        client
            .post(format!(
                "http://127.0.0.1:{}/api/apps/web/secrets/SECRET_KEY/rotate",
                instance.port
            ))
            .bearer_auth(&token)
            .send()
    };
    let mut versions = vec![ENV.to_string()];
    for (point, new_in_place) in POINTS {
        let before = std::fs::read_to_string(&env).unwrap();
        let old = value(&before);
        let server = instance
            .serve_with(&[(host::CRASH_AT, point)], Stdio::null(), Stdio::null())
            .await;
        // opsdeck may die before it answers: the job starts at once.
        let _ = rotate().await;
        let signal = server.death_signal().await;
        assert_eq!(signal, Some(9), "opsdeck did not die at {point}");

        let after = std::fs::read_to_string(&env).unwrap();
        let now = value(&after);
        if new_in_place {
            assert_eq!(
                after,
                envfile::set(&env, &before, "SECRET_KEY", &now).unwrap(),
                "at {point}: every other byte is as it was"
            );
            assert_ne!(now, old, "at {point} the new value is in place");
            assert!(now.len() == 64 && now.bytes().all(|b| b.is_ascii_hexdigit()));
        } else {
            assert_eq!(after, before, "at {point} the file is untouched");
        }
        assert_eq!(
            std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
            0o600
        );
        versions.push(after);
    }

    // A rotation after the crashes succeeds and clears what they left
    // half-written; every backup is a complete earlier version.
    let _server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
    let res = rotate().await.unwrap();
    assert_eq!(res.status(), 202);
    let job: serde_json::Value = res.json().await.unwrap();
    let url = format!("http://127.0.0.1:{}", instance.port);
    let state = support::cli::job_end(&url, &token, job["job"].as_i64().unwrap()).await;
    assert_eq!(state, "succeeded");
    let leftovers: Vec<String> = std::fs::read_dir(app.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("..env.opsdeck-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let backups = envfile::backups(&env).unwrap();
    assert!(backups.len() >= 7, "{backups:?}");
    for backup in backups {
        let text = std::fs::read_to_string(&backup).unwrap();
        assert!(
            versions.contains(&text),
            "{} is not a whole version",
            backup.display()
        );
    }
}

fn value(text: &str) -> String {
    envfile::get(std::path::Path::new(".env"), text, "SECRET_KEY")
        .unwrap()
        .unwrap()
}
