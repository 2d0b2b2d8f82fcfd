//! Key files (`file` secrets, issue 23): a real opsdeck rotates real PEM
//! files into new keys of the asked kind — parsed back here with the same
//! RustCrypto crates — keeping mode and owner, backing up, fingerprinting
//! the public key; a `generate_with` command's output replaces a file, a
//! failing one changes nothing, a failing health check (a stand-in that
//! answers 500 unless the file is back as it was) puts the old file back.
//! Config mistakes are named at their key.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opsdeck::auth::Role;
use opsdeck::host::envfile;
use opsdeck::jobs::State;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};
use support::server::{self, Server};

/// What the health stand-in wants: 200 unless the file holds other bytes.
type Pin = Arc<Mutex<Option<(PathBuf, Vec<u8>)>>>;

/// A health endpoint answering 200, or 500 while `pin` names a file whose
/// content is not the pinned one.
fn health_stand_in(pin: Pin) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let ok = match &*pin.lock().unwrap() {
                None => true,
                Some((path, want)) => std::fs::read(path).ok().as_ref() == Some(want),
            };
            let status = if ok {
                "200 OK"
            } else {
                "500 Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    port
}

struct Fixture {
    server: Server,
    dir: tempfile::TempDir,
    pin: Pin,
    owner: String,
}

/// The first content of each key file: a real ed25519 key for one, text
/// for the others (what they held need not be a key).
fn old_content(name: &str) -> String {
    match name {
        "signing.pem" => ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string(),
        other => format!("old content of {other} 0123456789abcdef\n"),
    }
}

const FILES: [&str; 5] = [
    "signing.pem",
    "rsa.pem",
    "ec.pem",
    "minted.pem",
    "broken.pem",
];

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    for name in FILES {
        let path = dir.path().join(name);
        support::write_private(&path, &old_content(name));
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&path, Some(4242), Some(4243)).unwrap();
        }
    }
    let pin: Pin = Arc::default();
    let port = health_stand_in(pin.clone());
    let at = |name: &str| dir.path().join(name).display().to_string();
    let server = server::start(&format!(
        r#"[[app]]
name = "robot"
health = {{ url = "http://127.0.0.1:{port}/", timeout = "2s" }}

[[app.secret]]
name = "SIGNING_KEY"
file = "{signing}"
generate = "ed25519"
keep_backups = 2

[[app.secret]]
name = "RSA_KEY"
file = "{rsa}"
generate = "rsa:3072"

[[app.secret]]
name = "EC_KEY"
file = "{ec}"
generate = "ecdsa-p256"

[[app.secret]]
name = "MINTED"
file = "{minted}"
generate_with = ["sh", "-c", "printf 'minted-%s\n' $(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"]

[[app.secret]]
name = "BROKEN"
file = "{broken}"
generate_with = ["sh", "-c", "echo 'mint: no quota left' >&2; exit 3"]

[[app.action]]
name = "show-key"
run = ["cat", "{signing}"]
"#,
        signing = at("signing.pem"),
        rsa = at("rsa.pem"),
        ec = at("ec.pem"),
        minted = at("minted.pem"),
        broken = at("broken.pem"),
    ))
    .await;
    let owner = server.token("ops", Role::Owner).await;
    Fixture {
        server,
        dir,
        pin,
        owner,
    }
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn run(&self, path: &str) -> (i64, State, String) {
        let res = server::client()
            .post(self.server.at(path))
            .bearer_auth(&self.owner)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{path}");
        let job = server::json(res).await["job"].as_i64().unwrap();
        let (state, _) = self.server.outcome(job).await;
        let output = self
            .server
            .get_as(&format!("/api/jobs/{job}/output"), &self.owner)
            .await
            .text()
            .await
            .unwrap();
        (job, state, output)
    }

    async fn rotate(&self, name: &str) -> (i64, State, String) {
        self.run(&format!("/api/apps/robot/secrets/{name}/rotate"))
            .await
    }

    async fn audit_of(&self, job: i64) -> String {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT detail FROM audit_events WHERE job_id = ? ORDER BY id")
                .bind(job)
                .fetch_all(&self.server.ctx.db)
                .await
                .unwrap();
        rows.join("\n")
    }
}

/// `sha256:` + 16 hex of the SHA-256 of a DER public key, as opsdeck shows it.
fn public_fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", &hex::encode(Sha256::digest(der))[..16])
}

/// The new key's kind checked by parsing it; its public key's fingerprint.
fn parse(name: &str, pem: &str) -> String {
    match name {
        "SIGNING_KEY" => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).expect("an ed25519 key");
            public_fingerprint(key.verifying_key().to_public_key_der().unwrap().as_bytes())
        }
        "RSA_KEY" => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("an RSA key");
            let public = rsa::RsaPublicKey::from(&key);
            assert_eq!(rsa::traits::PublicKeyParts::size(&public) * 8, 3072);
            public_fingerprint(public.to_public_key_der().unwrap().as_bytes())
        }
        "EC_KEY" => {
            let key = p256::SecretKey::from_pkcs8_pem(pem).expect("a P-256 key");
            public_fingerprint(key.public_key().to_public_key_der().unwrap().as_bytes())
        }
        other => panic!("{other}"),
    }
}

/// The lines of a PEM file worth looking for (its base64 body).
fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[tokio::test]
async fn key_files_become_new_keys_of_the_asked_kind_with_mode_and_owner_kept() {
    let f = fixture().await;
    for (secret, file, kind) in [
        ("SIGNING_KEY", "signing.pem", "ed25519"),
        ("RSA_KEY", "rsa.pem", "rsa:3072"),
        ("EC_KEY", "ec.pem", "ecdsa-p256"),
    ] {
        let path = f.path(file);
        let before = std::fs::metadata(&path).unwrap();
        let old = std::fs::read_to_string(&path).unwrap();
        let (job, state, output) = f.rotate(secret).await;
        assert_eq!(state, State::Succeeded, "{output}");
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{secret}");
        assert_ne!(new, old);
        let fingerprint = parse(secret, &new);

        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600, "{secret}");
        assert_eq!((meta.uid(), meta.gid()), (before.uid(), before.gid()));
        let backups = envfile::backups(&path).unwrap();
        assert_eq!(backups.len(), 1);
        assert_eq!(
            std::fs::metadata(&backups[0]).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), old);

        let shown = format!("{kind} key, public key {fingerprint}");
        assert!(output.contains(&shown), "{output}");
        let audit = f.audit_of(job).await;
        assert!(audit.contains(&shown), "{audit}");
        let page = f
            .server
            .get_as("/apps/robot", &f.owner)
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains(&shown), "{page}");
        for line in key_lines(&new).into_iter().chain(key_lines(&old)) {
            assert!(
                !output.contains(line),
                "{secret}: the output shows a key line"
            );
            assert!(!audit.contains(line) && !page.contains(line));
        }
    }
    // The old signing key was a key too: the output named its public key.
    let (_, _, output) = f.rotate("SIGNING_KEY").await;
    assert!(
        output.contains("; it held ed25519 key, public key sha256:"),
        "{output}"
    );
    assert_eq!(
        envfile::backups(&f.path("signing.pem")).unwrap().len(),
        2,
        "keep_backups"
    );

    // An action printing the key file: every line of it is masked.
    let key = std::fs::read_to_string(f.path("signing.pem")).unwrap();
    let (_, state, output) = f.run("/api/apps/robot/actions/show-key/run").await;
    assert_eq!(state, State::Succeeded);
    for line in key_lines(&key) {
        assert!(!output.contains(line), "{output}");
    }
    assert!(output.contains("[redacted]"), "{output}");
}

#[tokio::test]
async fn a_command_prints_the_new_content_and_failures_leave_or_put_back_the_old_file() {
    let f = fixture().await;
    let (job, state, output) = f.rotate("MINTED").await;
    assert_eq!(state, State::Succeeded, "{output}");
    let minted = std::fs::read_to_string(f.path("minted.pem")).unwrap();
    assert!(
        minted.starts_with("minted-") && minted.len() > 20,
        "{minted}"
    );
    let shown = format!("content {}", f.server.ctx.server_key.fingerprint(&minted));
    assert!(output.contains(&shown), "{output}");
    assert!(!output.contains(minted.trim()), "{output}");
    assert!(!f.audit_of(job).await.contains(minted.trim()));

    // The command fails: nothing changes, not even a backup.
    let (_, state, output) = f.rotate("BROKEN").await;
    assert_eq!(state, State::Failed);
    assert!(output.contains("exited with 3"), "{output}");
    assert!(output.contains("mint: no quota left"), "{output}");
    assert_eq!(
        std::fs::read_to_string(f.path("broken.pem")).unwrap(),
        old_content("broken.pem")
    );
    assert!(envfile::backups(&f.path("broken.pem")).unwrap().is_empty());

    // The app does not come up with the new key: the old file comes back.
    let ec = f.path("ec.pem");
    let old = std::fs::read(&ec).unwrap();
    *f.pin.lock().unwrap() = Some((ec.clone(), old.clone()));
    let (job, state, output) = f.rotate("EC_KEY").await;
    assert_eq!(state, State::Failed, "{output}");
    assert_eq!(std::fs::read(&ec).unwrap(), old, "the old file is back");
    assert!(output.contains("put back"), "{output}");
    let summary = f.server.ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert!(
        summary.ends_with("the recovery steps succeeded"),
        "{summary}"
    );
    assert_eq!(std::fs::metadata(&ec).unwrap().mode() & 0o777, 0o600);
}

fn problems(secret: &str, app_env_file: bool) -> String {
    let text = format!(
        "[[app]]\nname = \"robot\"\n{}\n[[app.secret]]\nname = \"K\"\n{secret}\n",
        if app_env_file {
            "env_file = \"/srv/robot/.env\""
        } else {
            ""
        }
    );
    match opsdeck::config::Config::parse(&text, Path::new("opsdeck.toml")) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_mistakes_are_named_at_their_key() {
    for (secret, env, expected) in [
        (
            "file = \"/srv/k.pem\"\ngenerate = \"hex:32\"",
            false,
            "a `file` secret is a whole key file",
        ),
        (
            "file = \"/srv/k.pem\"\ngenerate = \"set\"",
            false,
            "a key file is made by",
        ),
        (
            "file = \"/srv/k.pem\"\ngenerate = \"rsa:1024\"",
            false,
            "\"rsa:3072\"",
        ),
        ("file = \"/srv/k.pem\"", false, "missing `generate`"),
        (
            "file = \"k.pem\"\ngenerate = \"ed25519\"",
            false,
            "expected an absolute path",
        ),
        (
            "generate = \"ed25519\"",
            true,
            "makes a key file: set `file`",
        ),
        ("generate_with = [\"mint\"]", true, "set `file`"),
        (
            "file = \"/srv/k.pem\"\ngenerate = \"ed25519\"\ngenerate_with = [\"mint\"]",
            false,
            "keep one",
        ),
        (
            "file = \"/srv/k.pem\"\ngenerate_with = []",
            false,
            "found no program",
        ),
        (
            "file = \"/srv/k.pem\"\ngenerate = \"ed25519\"\nenv_file = \"/srv/.env\"",
            false,
            "a `file` secret is the whole file",
        ),
        (
            "generate = \"hex:32\"",
            false,
            "set `env_file` on the app (or on the secret)",
        ),
        (
            "generate = \"hex:32\"\nenv_file = \"rel.env\"",
            false,
            "expected an absolute path",
        ),
        (
            "generate = \"hex:32\"\nkey = \"NOT-A-NAME\"",
            true,
            "environment variable name",
        ),
        (
            "generate = \"set\"\ngitea_webhook = { repo = \"o/r\" }",
            true,
            "auth.gitea_url",
        ),
        ("generate = \"rot13\"", true, "or \"set\""),
    ] {
        let found = problems(secret, env);
        assert!(found.contains(expected), "{secret}:\n{found}");
    }
    for fine in [
        ("file = \"/srv/k.pem\"\ngenerate = \"rsa:4096\"", false),
        (
            "file = \"/srv/k.pem\"\ngenerate_with = [\"mint\", \"--pem\"]",
            false,
        ),
        ("generate = \"set\"", true),
        (
            "generate = \"hex:32\"\nenv_file = \"/etc/sitg/bot.env\"",
            false,
        ),
    ] {
        assert_eq!(problems(fine.0, fine.1), "", "{}", fine.0);
    }

    // Two secrets writing the same variable of the same file.
    let text = "[[app]]\nname = \"bots\"\nenv_file = \"/etc/a.env\"\n\n[[app.secret]]\nname = \"A\"\ngenerate = \"hex:32\"\nkey = \"T\"\n\n[[app.secret]]\nname = \"B\"\ngenerate = \"set\"\nkey = \"T\"\n\n[[app.secret]]\nname = \"C\"\ngenerate = \"set\"\nkey = \"T\"\nenv_file = \"/etc/b.env\"\n";
    let e = opsdeck::config::Config::parse(text, Path::new("opsdeck.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("secret \"A\" already holds T of /etc/a.env"),
        "{e}"
    );
    assert_eq!(e.matches("already holds").count(), 1, "{e}");
}
