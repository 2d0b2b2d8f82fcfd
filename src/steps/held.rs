//! A value a job is given that must never be stored: a secret pasted for a
//! `generate = "set"` secret. It lives in opsdeck's memory only, from the
//! request until its step takes it, and is wiped when dropped; the job's
//! stored plan says only that it holds one. A job queued when opsdeck
//! stopped has lost it, and ends `interrupted` instead of running.

use zeroize::Zeroizing;

pub struct Held(Zeroizing<String>);

impl Held {
    pub fn new(value: String) -> Held {
        Held(Zeroizing::new(value))
    }

    pub fn value(&self) -> &str {
        &self.0
    }
}

/// Never the value, in any debug print or log line.
impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held(hidden)")
    }
}
