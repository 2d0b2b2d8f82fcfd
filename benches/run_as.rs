//! Issue 19's figure: what a step pays for running as the app's own user
//! (`sudo -n -u USER -- sh -c …`) rather than as opsdeck itself, over a
//! 10-step job. Needs root (it makes a system account for the run and
//! removes it). Prints a Markdown table row; `cargo bench --bench run_as --
//! --bench`. Without `--bench` (as `cargo test --all-targets` runs it) it
//! returns at once.

use std::collections::BTreeMap;
use std::time::Duration;

use opsdeck::host::exec::capture;
use opsdeck::host::run_as::RunAs;
use opsdeck::host::ssh::Remote;
use support::account::Account;
use support::steps::{STEPS, ten_steps};

#[path = "../tests/support/mod.rs"]
mod support;

const T: Duration = Duration::from_secs(30);
const USER: &str = "opsdeck-bench19";

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let account = Account::new(USER).expect("the bench makes an account: run it as root");
    let as_user = Remote::here(RunAs {
        user: USER.to_owned(),
        group: None,
    });
    let step = vec!["true".to_owned()];
    let own = ten_steps(|| async {
        capture(&step, None, &BTreeMap::new(), T).await.unwrap();
    })
    .await;
    let other = ten_steps(|| async {
        let out = as_user.capture(&step, T).await.unwrap();
        assert!(out.success(), "{out:?}");
    })
    .await;
    drop(account);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| 10-step job as the app's user (sudo -n -u) vs as opsdeck: overhead per step | {:.1} ms | {:.0} ms vs {:.0} ms for 10 steps | — | ≪ a build step (seconds) |",
        (ms(other) - ms(own)) / STEPS as f64,
        ms(other),
        ms(own),
    );
}
