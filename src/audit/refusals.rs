//! Refusals are audited — an unknown or revoked API token, a form from
//! another origin, a webhook that does not verify, a log stream of a unit
//! the app does not own — but whoever sends them cannot flood the audit log
//! with them: each (client address, action) gets a token bucket of
//! [`PER_ADDRESS`] rows a minute, all usable at once, and each action
//! [`PER_ACTION`] a minute over all addresses (an attacker with many
//! addresses). A refusal past its allowance is counted instead, and once
//! the allowance refills one `audit.suppressed` row says how many refusals
//! of that action from that address (or from all, `*`) were not written.
//! Those summary rows count against the action's allowance too (past it
//! their counts join the `*` one, summed up at most once a minute), so
//! however many addresses send refusals, one action writes at most
//! [`PER_ACTION`] rows and one `*` summary a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::limit::Limiter;

/// Refusal rows per client address and action, per minute.
pub const PER_ADDRESS: u32 = 10;
/// Refusal rows per action over all addresses, per minute.
pub const PER_ACTION: u32 = 120;
/// The shortest wait before the `*` summary of an action: over all
/// addresses, one such row a minute is plenty.
const ALL_SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// Keys with a count waiting to be written; past it counts are dropped
/// from memory (and said so in the log), never allowed to grow.
const MAX_WAITING: usize = 10_000;

/// Which allowance a refusal is counted against: `(address, action)`,
/// with the address `*` for the allowance shared by all addresses.
pub(super) type Key = (String, String);

#[derive(Clone)]
pub(super) struct Refusals {
    per_address: Limiter<Key>,
    per_action: Limiter<String>,
    /// Refusals not written, per key, since its last summary.
    held: Arc<Mutex<HashMap<Key, u64>>>,
}

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Write,
    /// Counted; when this is the first held back since the last summary,
    /// the summary is due after `summary_after` (when the allowance refills).
    Held {
        key: Key,
        summary_after: Option<Duration>,
    },
}

/// What to do with the count of `key` once its summary is due.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Summary {
    Nothing,
    /// Write one row saying `count` refusals were held back.
    Write(u64),
    /// The action's allowance is used up: the count joined the `*` one,
    /// whose summary is due after the duration if it was not due already.
    Folded(Option<(Key, Duration)>),
}

impl Refusals {
    pub fn new() -> Refusals {
        Refusals {
            per_address: Limiter::new(PER_ADDRESS),
            per_action: Limiter::new(PER_ACTION),
            held: Arc::default(),
        }
    }

    pub fn judge(&self, remote: &str, action: &str) -> Verdict {
        let key = (remote.to_string(), action.to_string());
        match self.per_address.check(key.clone()) {
            Err(wait) => self.hold(key, 1, wait),
            Ok(()) => match self.per_action.check(action.to_string()) {
                Ok(()) => Verdict::Write,
                Err(_) => self.hold(all(action), 1, ALL_SUMMARY_EVERY),
            },
        }
    }

    /// Takes the count held for `key` (it starts again from zero) and says
    /// whether its summary row may be written now.
    pub fn summary(&self, key: &Key) -> Summary {
        let count = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.remove(key).unwrap_or(0)
        };
        if count == 0 {
            return Summary::Nothing;
        }
        if key.0 == "*" || self.per_action.check(key.1.clone()).is_ok() {
            return Summary::Write(count);
        }
        match self.hold(all(&key.1), count, ALL_SUMMARY_EVERY) {
            Verdict::Held {
                key,
                summary_after: Some(after),
            } => Summary::Folded(Some((key, after))),
            _ => Summary::Folded(None),
        }
    }

    /// Adds `count` to `key`'s; the summary is due after `wait` when the
    /// count was zero.
    fn hold(&self, key: Key, count: u64, wait: Duration) -> Verdict {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.len() >= MAX_WAITING && !held.contains_key(&key) {
            tracing::warn!(
                "too many addresses refused at once; {} counts of refusals not written to the audit log are dropped",
                held.len()
            );
            held.clear();
        }
        let total = held.entry(key.clone()).or_insert(0);
        let first = *total == 0;
        *total += count;
        Verdict::Held {
            summary_after: first.then_some(wait),
            key,
        }
    }
}

/// The key counting `action`'s refusals over all addresses.
fn all(action: &str) -> Key {
    ("*".to_string(), action.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_address_is_written_up_to_its_allowance_then_counted() {
        let r = Refusals::new();
        for _ in 0..PER_ADDRESS {
            assert_eq!(r.judge("192.0.2.1", "auth.token"), Verdict::Write);
        }
        let Verdict::Held { key, summary_after } = r.judge("192.0.2.1", "auth.token") else {
            panic!("the 11th refusal is written");
        };
        assert!(
            summary_after.is_some(),
            "the first one held schedules a summary"
        );
        for _ in 0..39 {
            let Verdict::Held { summary_after, .. } = r.judge("192.0.2.1", "auth.token") else {
                panic!("written past the allowance");
            };
            assert_eq!(summary_after, None, "one summary per run of held refusals");
        }
        // Another action, and another address, have allowances of their own.
        assert_eq!(r.judge("192.0.2.1", "auth.csrf"), Verdict::Write);
        assert_eq!(r.judge("192.0.2.2", "auth.token"), Verdict::Write);
        assert_eq!(r.summary(&key), Summary::Write(40));
        assert_eq!(r.summary(&key), Summary::Nothing);
    }

    #[test]
    fn many_addresses_share_one_allowance_per_action_summaries_included() {
        let r = Refusals::new();
        let address = |i: u32| format!("198.51.100.{}.{}", i / 256, i % 256);
        let mut written = 0;
        let mut per_address = Vec::new();
        for i in 0..300 {
            for _ in 0..=PER_ADDRESS {
                match r.judge(&address(i), "webhook") {
                    Verdict::Write => written += 1,
                    Verdict::Held {
                        key,
                        summary_after: Some(_),
                    } if key.0 != "*" => per_address.push(key),
                    Verdict::Held { .. } => {}
                }
            }
        }
        assert_eq!(written, PER_ACTION);
        // Every address went past its own allowance, but their summaries
        // find the action's allowance used up: they join the `*` count.
        assert_eq!(per_address.len(), 300);
        let summaries = per_address
            .iter()
            .filter(|key| matches!(r.summary(key), Summary::Write(_)))
            .count();
        assert_eq!(summaries, 0);
        let everyone = 300 * (PER_ADDRESS + 1) - PER_ACTION;
        assert_eq!(
            r.summary(&all("webhook")),
            Summary::Write(u64::from(everyone))
        );
    }
}
