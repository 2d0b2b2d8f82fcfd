//! Tamper evidence you can see: a background task that verifies the chain
//! once fully, then incrementally as rows are written, and a full pass again
//! every hour (an edit of an old row is only caught by a full pass).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Audit;
use super::verify::{Problem, Verified, VerifyError, verify, verify_from};

/// What the audit page says about the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// The first verification has not finished (or this process runs none).
    Pending,
    /// Rows #1 to #`through` verified, at `at` (Unix milliseconds).
    Verified { count: u64, through: i64, at: i64 },
    /// The first bad row, found at `at`. It stays broken until a restart
    /// verifies again: an append-only log cannot be repaired.
    Broken { problem: Problem, at: i64 },
}

/// Shared between the writer (which wakes the verifier) and the page.
#[derive(Clone)]
pub(super) struct Watch {
    status: Arc<Mutex<ChainStatus>>,
    written: Arc<Notify>,
}

impl Default for Watch {
    fn default() -> Watch {
        Watch {
            status: Arc::new(Mutex::new(ChainStatus::Pending)),
            written: Arc::new(Notify::new()),
        }
    }
}

impl Watch {
    pub(super) fn written(&self) {
        self.written.notify_one();
    }

    fn set(&self, status: ChainStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    pub(super) fn status(&self) -> ChainStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// At most this long between incremental checks when nothing is written.
const IDLE_CHECK: Duration = Duration::from_secs(60);
const FULL_CHECK: Duration = Duration::from_secs(60 * 60);

impl Audit {
    /// Starts the background verifier (`opsdeck serve` does, once).
    pub fn watch_chain(&self) {
        let audit = self.clone();
        tokio::spawn(async move { audit.verify_forever().await });
    }

    /// The verifier's latest word on the chain.
    pub fn chain_status(&self) -> ChainStatus {
        self.watch.status()
    }

    async fn verify_forever(self) {
        let mut done: Option<(Verified, Instant)> = None;
        loop {
            let result = match &done {
                Some((v, full_at)) if full_at.elapsed() < FULL_CHECK => {
                    verify_from(&self.db, v).await.map(|n| (n, *full_at))
                }
                _ => verify(&self.db).await.map(|v| (v, Instant::now())),
            };
            let now = chrono::Utc::now().timestamp_millis();
            match result {
                Ok((v, full_at)) => {
                    self.watch.set(ChainStatus::Verified {
                        count: v.count,
                        through: v.last_id,
                        at: now,
                    });
                    done = Some((v, full_at));
                }
                Err(VerifyError::Broken(problem)) => {
                    tracing::error!(target: "audit", "the audit chain is broken: {problem}");
                    self.watch.set(ChainStatus::Broken { problem, at: now });
                    return;
                }
                Err(e) => tracing::warn!("cannot verify the audit chain now: {e}"),
            }
            tokio::select! {
                _ = self.watch.written.notified() => {}
                _ = tokio::time::sleep(IDLE_CHECK) => {}
            }
        }
    }
}
