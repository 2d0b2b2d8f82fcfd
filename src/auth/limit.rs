//! The sign-in rate limit: each client address may start at most `burst`
//! sign-ins at once and then one more every `60 s / per_minute`, so a script
//! guessing dev logins or hammering Gitea through us is slowed to a crawl
//! while a person who mistypes twice never notices. The same bucket keyed
//! by (address, kind) bounds how many refusals reach the audit log
//! (`audit::refusals`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default allowance: ten sign-ins per minute and address.
pub const SIGNINS_PER_MINUTE: u32 = 10;

/// At most this many addresses are remembered; past it, addresses whose
/// allowance has refilled are forgotten first (they carry no state anyway).
const MAX_ADDRESSES: usize = 10_000;

/// Token buckets per key: a client address, or anything else to limit by.
#[derive(Clone)]
pub struct Limiter<K = IpAddr> {
    per_minute: u32,
    buckets: Arc<Mutex<HashMap<K, Bucket>>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq> Limiter<K> {
    /// `per_minute` sign-ins per address and minute, all usable at once.
    pub fn new(per_minute: u32) -> Limiter<K> {
        Limiter {
            per_minute: per_minute.max(1),
            buckets: Arc::default(),
        }
    }

    /// Takes one sign-in from `addr`'s allowance; Err(wait) when it is used
    /// up, with how long until the next one is allowed.
    pub fn check(&self, addr: K) -> Result<(), Duration> {
        let now = Instant::now();
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&addr) {
            buckets.retain(|_, b| refill(*b, now, per_sec, capacity) < capacity);
            if buckets.len() >= MAX_ADDRESSES {
                // Under a flood of distinct addresses, forget everyone rather than
                // grow without bound; the flood is then limited per address again.
                buckets.clear();
            }
        }
        let bucket = buckets.entry(addr).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let tokens = refill(*bucket, now, per_sec, capacity);
        if tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - tokens) / per_sec));
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        Ok(())
    }
}

fn refill(b: Bucket, now: Instant, per_sec: f64, capacity: f64) -> f64 {
    (b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst_per_address() {
        let limit = Limiter::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.check(a).is_ok());
        }
        let wait = limit.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        assert!(limit.check(b).is_ok());
    }
}
