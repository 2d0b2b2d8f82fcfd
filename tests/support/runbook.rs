//! A runbook's example config (`deploy/examples/`) operated end to end
//! under the installed package: the file adapted only in paths and ports,
//! installed with the shipped polkit rule, opsdeck started by its shipped
//! unit, jobs started through the API and the audit log read back and
//! verified at the end.

use serde_json::{Value, json};

use super::package::{Installed, owner_token, service_journal, wait_for_health};
use super::sandbox::Sandbox;

/// `deploy/examples/<name>` with each `(from, to)` replaced, in order.
pub fn example(name: &str, replace: &[(&str, &str)]) -> String {
    let path = format!("{}/deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{name} has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// opsdeck installed and running under the shipped unit, with an owner's
/// token.
pub struct Deck {
    pub base: String,
    pub token: String,
}

/// Installs `config` as /etc/opsdeck/opsdeck.toml (with the client secret
/// its `[auth]` names), the shipped polkit rule, a drop-in letting the unit
/// write `writable`, and starts opsdeck; fails the test if `opsdeck check`
/// warns.
pub async fn start(installed: &Installed, config: &str, port: u16, writable: &[&str]) -> Deck {
    let sandbox = &installed.sandbox;
    sandbox.start_bus_and_polkit();
    super::package::install_config(sandbox, installed.work.path(), config);
    sandbox.run_ok(&[
        "sh",
        "-c",
        "install -m 0640 -g opsdeck /dev/null /etc/opsdeck/client_secret \
         && printf 's3cret\\n' > /etc/opsdeck/client_secret",
    ]);
    sandbox.run_ok(&[
        "install",
        "-m",
        "0644",
        "/usr/share/doc/opsdeck/examples/polkit/50-opsdeck.rules",
        "/etc/polkit-1/rules.d/50-opsdeck.rules",
    ]);
    let dropins = "/run/systemd/system/opsdeck.service.d";
    let paths: String = writable.iter().map(|p| format!(" -{p}")).collect();
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!("mkdir -p {dropins} && printf '[Service]\\nReadWritePaths={paths}\\n' > {dropins}/paths.conf"),
    ]);
    sandbox.run_ok(&["systemctl", "daemon-reload"]);
    let started = sandbox.run(&["systemctl", "enable", "--now", "opsdeck"]);
    assert!(
        started.status.success(),
        "opsdeck.service did not start:\n{}",
        service_journal(sandbox)
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_health(&reqwest::Client::new(), &base, sandbox).await;
    let journal = service_journal(sandbox);
    assert!(!journal.contains("warning:"), "check warns:\n{journal}");
    let token = owner_token(sandbox, "runbook");
    Deck { base, token }
}

impl Deck {
    /// POSTs `body` to `path`: the job it started, or the refusal's status
    /// and body.
    pub async fn post(&self, path: &str, body: Value) -> Result<i64, (u16, String)> {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        if status != 202 {
            return Err((status, text));
        }
        let started: Value = serde_json::from_str(&text).unwrap();
        Ok(started["job"].as_i64().unwrap())
    }

    /// Waits for job `id`; its final state and output.
    pub async fn end(&self, id: i64) -> (String, String) {
        let state = super::cli::job_end(&self.base, &self.token, id).await;
        let output = super::cli::job_output(&self.base, &self.token, id).await;
        (state, output)
    }

    /// Starts a job and waits for it to succeed; its output.
    pub async fn ok(&self, path: &str, body: Value) -> String {
        let id = self
            .post(path, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: refused {e:?}"));
        let (state, output) = self.end(id).await;
        assert_eq!(state, "succeeded", "{path}: job {id}:\n{output}");
        output
    }

    /// Runs an action with `params`; the job's output.
    pub async fn action(&self, app: &str, action: &str, params: Value) -> String {
        let path = format!("/api/apps/{app}/actions/{action}/run");
        self.ok(&path, json!({ "params": params })).await
    }

    /// A GET of the API, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every audit row so far (`GET /api/audit`).
    pub async fn audit(&self) -> Vec<Value> {
        let text = reqwest::Client::new()
            .get(format!("{}/api/audit?format=jsonl", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The outcomes of the audit rows with `action` whose detail mentions
    /// `about`, in order.
    pub async fn outcomes(&self, action: &str, about: &str) -> Vec<String> {
        self.audit()
            .await
            .iter()
            .filter(|r| r["action"] == action && r["detail"].to_string().contains(about))
            .map(|r| r["outcome"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The audit chain, exported by the service's user and verified offline
/// (README "Security"); fails the test unless it verifies.
pub fn verify_audit_chain(sandbox: &Sandbox) {
    sandbox.run_ok(&[
        "runuser",
        "-u",
        "opsdeck",
        "--",
        "sh",
        "-c",
        "opsdeck audit export --config /etc/opsdeck/opsdeck.toml --format jsonl \
         > /var/lib/opsdeck/audit.jsonl",
    ]);
    let verified = sandbox.run_ok(&[
        "opsdeck",
        "audit",
        "verify",
        "--file",
        "/var/lib/opsdeck/audit.jsonl",
    ]);
    assert!(verified.starts_with("verified "), "{verified}");
}
