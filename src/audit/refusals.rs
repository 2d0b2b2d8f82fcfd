//! Refusals are audited — an unknown or revoked API token, a form from
//! another origin, a webhook that does not verify, a log stream of a unit
//! the app does not own — but whoever sends them cannot flood the audit log
//! with them: each (client address, action) gets a token bucket of
//! [`PER_ADDRESS`] rows a minute, all usable at once, and each action
//! [`PER_ACTION`] a minute over all addresses (an attacker with many
//! addresses). A refusal past its allowance is counted instead, and once
//! the allowance refills one `audit.suppressed` row says how many refusals
//! of that action from that address (or from all, `*`) were not written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::auth::limit::Limiter;

/// Refusal rows per client address and action, per minute.
pub const PER_ADDRESS: u32 = 10;
/// Refusal rows per action over all addresses, per minute.
pub const PER_ACTION: u32 = 120;
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
    /// the summary is due after `after` (when the allowance refills).
    Held {
        key: Key,
        summary_after: Option<std::time::Duration>,
    },
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
        let (key, wait) = match self
            .per_address
            .check((remote.to_string(), action.to_string()))
        {
            Err(wait) => ((remote.to_string(), action.to_string()), wait),
            Ok(()) => match self.per_action.check(action.to_string()) {
                Ok(()) => return Verdict::Write,
                Err(wait) => (("*".to_string(), action.to_string()), wait),
            },
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.len() >= MAX_WAITING && !held.contains_key(&key) {
            tracing::warn!(
                "too many addresses refused at once; {} counts of refusals not written to the audit log are dropped",
                held.len()
            );
            held.clear();
        }
        let count = held.entry(key.clone()).or_insert(0);
        *count += 1;
        Verdict::Held {
            summary_after: (*count == 1).then_some(wait),
            key,
        }
    }

    /// How many refusals of `key` were held back since its last summary
    /// (and starts counting again).
    pub fn take(&self, key: &Key) -> u64 {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(key).unwrap_or(0)
    }
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
        assert_eq!(r.take(&key), 40);
        assert_eq!(r.take(&key), 0);
    }

    #[test]
    fn many_addresses_share_one_allowance_per_action() {
        let r = Refusals::new();
        let written = (0..PER_ACTION * 2)
            .filter(|i| r.judge(&format!("198.51.100.{i}"), "webhook") == Verdict::Write)
            .count();
        assert_eq!(written, PER_ACTION as usize);
        assert_eq!(
            r.take(&("*".to_string(), "webhook".to_string())),
            u64::from(PER_ACTION)
        );
    }
}
