//! Crash safety of a key file's rotation (issue 23): the real `opsdeck
//! serve` kills itself with SIGKILL at each named point of the rotation
//! (`OPSDECK_CRASH_AT`, the signal of `kill -9` at an exact point), and the
//! PEM file is always whole — the old key before the rename, a new ed25519
//! key (parsed back with the crate opsdeck uses) after it — with its mode
//! and owner; started again, opsdeck shows the job `interrupted`.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use opsdeck::host::{self, envfile};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use support::cli::Instance;

/// Every crash point of a key file's rotation, in order, and whether the
/// new key is in place when opsdeck dies there.
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

fn is_key(pem: &str) -> bool {
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem).is_ok()
}

#[tokio::test]
async fn kill_9_at_every_point_of_a_key_rotation_leaves_a_whole_key_and_an_interrupted_job() {
    let app = tempfile::tempdir().unwrap();
    let key = app.path().join("signing.pem");
    let first = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    std::fs::write(&key, &first).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&key, Some(4242), Some(4243)).unwrap();
    }
    let owner = |path: &Path| {
        let meta = std::fs::metadata(path).unwrap();
        (meta.uid(), meta.gid(), meta.mode() & 0o7777)
    };
    let owned = owner(&key);
    let instance = Instance::new(&format!(
        "[[app]]\nname = \"robot\"\n\n[[app.secret]]\nname = \"SIGNING_KEY\"\nfile = {:?}\ngenerate = \"ed25519\"\nkeep_backups = 50\n",
        key.display().to_string()
    ));
    let token = instance.token("ops", "owner");
    let url = format!("http://127.0.0.1:{}", instance.port);
    let client = reqwest::Client::new();
    let rotate = || {
        client
            .post(format!("{url}/api/apps/robot/secrets/SIGNING_KEY/rotate"))
            .bearer_auth(&token)
            .send()
    };
    let mut versions = vec![first];
    for (job, (point, new_in_place)) in (1..).zip(POINTS) {
        let before = std::fs::read_to_string(&key).unwrap();
        let server = instance
            .serve_with(&[(host::CRASH_AT, point)], Stdio::null(), Stdio::null())
            .await;
        // opsdeck may die before it answers: the job starts at once.
        let _ = rotate().await;
        assert_eq!(server.death_signal().await, Some(9), "no death at {point}");

        let after = std::fs::read_to_string(&key).unwrap();
        assert!(is_key(&after), "at {point} the file is not a whole key");
        if new_in_place {
            assert_ne!(after, before, "at {point} the new key is in place");
        } else {
            assert_eq!(after, before, "at {point} the file is untouched");
        }
        assert_eq!(owner(&key), owned, "at {point}: owner and mode kept");
        versions.push(after);

        let server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
        let shown = support::cli::job(&server.url, &token, job).await;
        assert_eq!(shown["kind"], "rotate", "{shown}");
        assert_eq!(shown["state"], "interrupted", "at {point}: {shown}");
        let (status, _) = server.stop();
        assert!(status.success());
    }

    // A rotation after the crashes succeeds and clears what they left
    // half-written; every backup is a whole earlier key.
    let _server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
    let res = rotate().await.unwrap();
    assert_eq!(res.status(), 202);
    let job: serde_json::Value = res.json().await.unwrap();
    let state = support::cli::job_end(&url, &token, job["job"].as_i64().unwrap()).await;
    assert_eq!(state, "succeeded");
    assert!(is_key(&std::fs::read_to_string(&key).unwrap()));
    assert_eq!(owner(&key), owned);
    let leftovers: Vec<String> = std::fs::read_dir(app.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".signing.pem.opsdeck-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let backups = envfile::backups(&key).unwrap();
    assert!(backups.len() >= 7, "{backups:?}");
    for backup in backups {
        let text = std::fs::read_to_string(&backup).unwrap();
        assert!(
            versions.contains(&text),
            "{} is not a whole key",
            backup.display()
        );
        assert_eq!(std::fs::metadata(&backup).unwrap().mode() & 0o777, 0o600);
    }
}
