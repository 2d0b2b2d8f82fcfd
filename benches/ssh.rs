//! Issue 10's figure: what a 10-step deploy pays for running its steps
//! over SSH, with one shared connection (ControlMaster) and with a new
//! connection per step, against a real sshd on loopback; the same ten
//! steps run locally are the floor. Prints Markdown table rows;
//! `cargo bench --bench ssh -- --bench`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it returns at once.

use std::collections::BTreeMap;
use std::time::Duration;

use opsdeck::config::Config;
use opsdeck::host::exec::capture;
use opsdeck::host::ssh::Remote;
use support::steps::ten_steps;

#[path = "../tests/support/mod.rs"]
mod support;

const T: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sshd = support::sshd::Sshd::start().expect("sshd is installed");
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\ndata_dir = {:?}\n{}",
        data.path().display().to_string(),
        sshd.hosts_toml(&sshd.known_hosts())
    );
    let config = Config::parse(&text, &data.path().join("opsdeck.toml")).unwrap();
    let shared = Remote::resolve(&config, "remote").unwrap().unwrap();
    let fresh = shared.clone().without_connection_reuse();
    let step = vec!["true".to_owned()];

    let local = ten_steps(|| async {
        capture(&step, None, &BTreeMap::new(), T).await.unwrap();
    })
    .await;
    // The first round opens the shared connection; the median round reuses it.
    let reused = ten_steps(|| async {
        shared.capture(&step, T).await.unwrap();
    })
    .await;
    let unshared = ten_steps(|| async {
        fresh.capture(&step, T).await.unwrap();
    })
    .await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| 10-step deploy over SSH, shared connection: overhead over local | {:.0} ms | {:.0} ms without reuse | {:.2} | reuse ≪ no reuse |",
        ms(reused) - ms(local),
        ms(unshared) - ms(local),
        (ms(reused) - ms(local)) / (ms(unshared) - ms(local)),
    );
}
