//! Timing of short steps, for the benches that compare ways of running
//! them (over SSH with and without a shared connection; as the app's user
//! through sudo or as opsdeck).

use std::time::{Duration, Instant};

/// Steps in one job.
pub const STEPS: usize = 10;
/// Jobs timed; the median is reported.
const ROUNDS: usize = 5;

/// The median time of [`STEPS`] steps run one after another by `run`.
pub async fn ten_steps<F, Fut>(run: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..STEPS {
            run().await;
        }
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}
