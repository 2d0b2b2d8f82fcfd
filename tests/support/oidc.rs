//! A real OpenID provider configured like Gitea (`tests/oidc/provider.mjs`,
//! npm `oidc-provider`), started on a port of the test's choosing and
//! stopped when dropped. Needs `node` and `npm ci --prefix tests/oidc`
//! (`scripts/test` runs it); under `CI=true` a missing piece fails the test,
//! elsewhere the test is skipped with a loud message.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;

pub const CLIENT_ID: &str = "opsdeck";
pub const CLIENT_SECRET: &str = "gto_test_client_secret";
/// Another application registered at the same provider.
pub const OTHER_CLIENT_ID: &str = "another-app";
pub const OTHER_REDIRECT: &str = "http://127.0.0.1:9/another-app/callback";

/// The Gitea users the provider knows: login → (numeric id, groups).
pub const USERS: &[(&str, u32, &[&str])] = &[
    ("ann", 1, &["wiggleverse", "wiggleverse:owners"]),
    ("olly", 2, &["wiggleverse"]),
    ("nobody", 3, &[]),
    ("eve", 4, &["elsewhere", "elsewhere:devs"]),
];

pub struct Provider {
    pub port: u16,
    /// The issuer it publishes.
    pub issuer: String,
    child: Child,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Whether the provider can run here. Installs its npm packages once if
/// npm is there but they are not.
pub fn available() -> bool {
    static INSTALL: Once = Once::new();
    let modules = dir().join("node_modules/oidc-provider");
    INSTALL.call_once(|| {
        if !modules.exists() && has("npm") {
            let _ = Command::new("npm")
                .args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(dir())
                .status();
        }
    });
    let missing = if !has("node") {
        Some("`node` is not installed (apt-get install nodejs npm)")
    } else if !modules.exists() {
        Some("tests/oidc/node_modules is missing (run `npm ci --prefix tests/oidc`)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the OpenID provider cannot run: {why}")
        }
        Some(why) => {
            eprintln!("\n*** SKIPPED: the OpenID provider cannot run: {why} ***\n");
            false
        }
    }
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port nobody listens on right now (for a provider started later).
impl Provider {
    /// Gitea's own shape: the issuer is its ROOT_URL, with a trailing slash.
    pub fn start(port: u16, redirect_uri: &str) -> Provider {
        Provider::start_with_issuer(port, redirect_uri, &format!("http://127.0.0.1:{port}/"))
    }

    pub fn start_with_issuer(port: u16, redirect_uri: &str, issuer: &str) -> Provider {
        let users: serde_json::Map<String, serde_json::Value> = USERS
            .iter()
            .map(|(login, id, groups)| {
                (
                    login.to_string(),
                    serde_json::json!({"id": id, "name": format!("{login} (Gitea)"), "groups": groups}),
                )
            })
            .collect();
        let clients = serde_json::json!([
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri],
            },
            {
                "client_id": OTHER_CLIENT_ID,
                "client_secret": "another-secret",
                "redirect_uris": [OTHER_REDIRECT],
            },
        ]);
        let mut child = Command::new("node")
            .arg(dir().join("provider.mjs"))
            .env("PORT", port.to_string())
            .env("ISSUER", issuer)
            .env("CLIENTS", clients.to_string())
            .env("USERS", serde_json::Value::Object(users).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.starts_with("ready "));
        assert!(ready, "the OpenID provider exited before it was ready");
        // Keep reading so the provider never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Provider {
            port,
            issuer: issuer.to_string(),
            child,
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[auth]` + `[roles]` for an opsdeck that signs in at `gitea_url`.
pub fn gitea_config(dir_for_secret: &std::path::Path, gitea_url: &str, secret: &str) -> String {
    let secret_file = dir_for_secret.join("client_secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    format!(
        "[auth]\ngitea_url = \"{gitea_url}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret_file = \"{}\"\n\n\
         [roles]\nowner = [\"team:wiggleverse:owners\"]\noperator = [\"org:wiggleverse\"]\n",
        secret_file.display()
    )
}
