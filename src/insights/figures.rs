//! Every figure, computed from the facts `store.rs` reads: no database,
//! no clock, so each rule is tested on a history written by hand.
//!
//! The rules (README "Insights"):
//! - a **deploy** is a `deploy` job that ran to an end: succeeded, failed,
//!   timed out or interrupted (one cancelled is left out: someone chose to
//!   stop it); rollbacks are not deploys, they restore;
//! - a deploy **failed** when its job did not succeed, or when it went live
//!   and a rollback later moved away from it (the release log's "succeeded,
//!   later rolled back");
//! - **time to restore** runs from a failed deploy's end (for one rolled
//!   back: from when it went live) to the end of the app's next deploy or
//!   rollback that went live; failed deploys restored by the same one are
//!   one incident, timed from the first;
//! - **lead time** runs from a deployed commit's committer time to its
//!   deploy going live;
//! - percentiles are nearest-rank: p50 of 4 values is the 2nd smallest.

use std::collections::BTreeMap;

use super::{Insights, KINDS, Range, Window};

/// The deploys of one app requested on one day that ran to an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub app: String,
    /// 0 = the window's first day.
    pub day: i64,
    pub count: i64,
}

/// Why a deploy counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Failed,
    TimedOut,
    Interrupted,
    /// It went live, and a rollback moved away from it.
    RolledBack,
}

impl Cause {
    /// From the job's state (`rolled_back` for a rolled back deploy).
    pub fn parse(state: &str) -> Option<Cause> {
        match state {
            "failed" => Some(Cause::Failed),
            "timed_out" => Some(Cause::TimedOut),
            "interrupted" => Some(Cause::Interrupted),
            "rolled_back" => Some(Cause::RolledBack),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Failed => "failed",
            Cause::TimedOut => "timed out",
            Cause::Interrupted => "interrupted",
            Cause::RolledBack => "rolled back",
        }
    }
}

/// The deploy or rollback that went live after a failure: its job and
/// when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restore {
    pub job: i64,
    pub at: i64,
}

/// A failed deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub app: String,
    pub job: i64,
    /// When it was requested: the day it counts on.
    pub requested: i64,
    /// When its job ended (a rolled back one: when it went live).
    pub ended: i64,
    pub cause: Cause,
    /// None: nothing went live since.
    pub restored: Option<Restore>,
}

/// What `store.rs` read for a window.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub ran: Vec<Ran>,
    pub failures: Vec<Failure>,
    /// Per app: each deploy's lead time (ms), in no order.
    pub lead: Vec<(String, Vec<i64>)>,
    /// Per kind: each job's duration (ms), in no order.
    pub durations: Vec<(String, Vec<i64>)>,
}

impl Facts {
    /// The figures of all of `apps` together, of each, and the durations.
    pub(super) fn insights(self, range: Range, window: Window, apps: &[String]) -> Insights {
        let Facts {
            ran,
            failures,
            mut lead,
            durations,
        } = self;
        let per_app = apps
            .iter()
            .map(|app| {
                let ran: Vec<Ran> = ran.iter().filter(|r| &r.app == app).cloned().collect();
                let failures: Vec<Failure> =
                    failures.iter().filter(|f| &f.app == app).cloned().collect();
                let lead = lead
                    .iter()
                    .find(|(a, _)| a == app)
                    .map(|(_, values)| values.clone())
                    .unwrap_or_default();
                (app.clone(), Delivery::new(&window, &ran, &failures, lead))
            })
            .collect();
        let all_lead = lead.iter_mut().flat_map(|(_, v)| v.drain(..)).collect();
        let mut durations: BTreeMap<String, Vec<i64>> = durations.into_iter().collect();
        Insights {
            range,
            window,
            overall: Delivery::new(&window, &ran, &failures, all_lead),
            apps: per_app,
            durations: KINDS
                .iter()
                .filter_map(|kind| {
                    let values = durations.remove(*kind)?;
                    Some(KindSpread {
                        kind: (*kind).to_owned(),
                        spread: Spread::of(values)?,
                    })
                })
                .collect(),
        }
    }
}

/// One bar of the deploys chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Midnight UTC of its first day.
    pub start: i64,
    /// How many days it covers.
    pub days: i64,
    pub deploys: i64,
    /// Of `deploys`.
    pub failed: i64,
}

/// Failed deploys of one app that one deploy or rollback restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub app: String,
    /// When the first of them ended.
    pub start: i64,
    /// Their jobs, oldest first.
    pub failed: Vec<i64>,
    pub restored: Option<Restore>,
}

impl Incident {
    /// Its time to restore; None while nothing went live since.
    pub fn duration(&self) -> Option<i64> {
        self.restored.map(|r| (r.at - self.start).max(0))
    }
}

/// How a set of durations spreads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub count: usize,
    pub p50: i64,
    pub p95: i64,
    pub max: i64,
}

impl Spread {
    /// None for no values.
    pub fn of(mut values: Vec<i64>) -> Option<Spread> {
        let max = *values.iter().max()?;
        // Two selections, each one pass: 100,000 durations need no sort.
        let p95 = percentile(&mut values, 95)?;
        let p50 = percentile(&mut values, 50)?;
        Some(Spread {
            count: values.len(),
            p50,
            p95,
            max,
        })
    }
}

/// The nearest-rank `p`th percentile (1–100): the smallest value with at
/// least `p` % of the values at or below it. Reorders `values`.
pub fn percentile(values: &mut [i64], p: usize) -> Option<i64> {
    if values.is_empty() || !(1..=100).contains(&p) {
        return None;
    }
    let rank = (p * values.len()).div_ceil(100);
    let (_, value, _) = values.select_nth_unstable(rank - 1);
    Some(*value)
}

/// A job duration per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSpread {
    pub kind: String,
    pub spread: Spread,
}

const HOUR: i64 = 3_600_000;

/// The lead time chart's bars: each holds the deploys whose lead time is
/// below its bound (and at or above the previous one).
pub const LEAD_BINS: [(i64, &str); 5] = [
    (HOUR, "under 1 h"),
    (6 * HOUR, "1–6 h"),
    (24 * HOUR, "6–24 h"),
    (7 * 24 * HOUR, "1–7 days"),
    (i64::MAX, "a week or more"),
];

/// The delivery figures of one app, or of several together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub days: i64,
    pub buckets: Vec<Bucket>,
    pub deploys: i64,
    pub failed: i64,
    /// Of `failed`: those that went live and were rolled back.
    pub rolled_back: i64,
    /// Newest first.
    pub incidents: Vec<Incident>,
    /// Over the restored incidents.
    pub restore: Option<Spread>,
    pub lead: Option<Spread>,
    /// How many deploys fall in each of [`LEAD_BINS`].
    pub lead_bins: [usize; 5],
}

impl Delivery {
    pub fn new(window: &Window, ran: &[Ran], failures: &[Failure], lead: Vec<i64>) -> Delivery {
        let mut buckets: Vec<Bucket> = (0..window.buckets())
            .map(|i| {
                let first = i64::try_from(i).unwrap_or(0) * window.bucket_days;
                Bucket {
                    start: window.since + first * super::DAY,
                    days: window.bucket_days.min(window.days - first),
                    deploys: 0,
                    failed: 0,
                }
            })
            .collect();
        for r in ran {
            if let Some(b) = window.bucket_of_day(r.day).and_then(|i| buckets.get_mut(i)) {
                b.deploys += r.count;
            }
        }
        for f in failures {
            let day = window.day_of(f.requested);
            if let Some(b) = window.bucket_of_day(day).and_then(|i| buckets.get_mut(i)) {
                b.failed += 1;
            }
        }
        let incidents = incidents(failures);
        let restored = incidents.iter().filter_map(Incident::duration).collect();
        let mut lead_bins = [0; 5];
        for value in &lead {
            let bin = LEAD_BINS
                .iter()
                .position(|(below, _)| value < below)
                .unwrap_or(LEAD_BINS.len() - 1);
            lead_bins[bin] += 1;
        }
        Delivery {
            days: window.days,
            deploys: buckets.iter().map(|b| b.deploys).sum(),
            failed: failures.len() as i64,
            rolled_back: failures
                .iter()
                .filter(|f| f.cause == Cause::RolledBack)
                .count() as i64,
            buckets,
            incidents,
            restore: Spread::of(restored),
            lead: Spread::of(lead),
            lead_bins,
        }
    }

    /// Deploys per 7 days of the range.
    pub fn per_week(&self) -> f64 {
        self.deploys as f64 * 7.0 / self.days as f64
    }

    /// The change failure rate in percent; None without deploys.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.deploys > 0).then(|| self.failed as f64 * 100.0 / self.deploys as f64)
    }

    /// Incidents nothing has restored yet.
    pub fn open(&self) -> usize {
        self.incidents
            .iter()
            .filter(|i| i.restored.is_none())
            .count()
    }
}

/// Failures grouped by what restored them (per app), newest first.
fn incidents(failures: &[Failure]) -> Vec<Incident> {
    let mut by_restore: BTreeMap<(&str, Option<i64>), Incident> = BTreeMap::new();
    for f in failures {
        let key = (f.app.as_str(), f.restored.map(|r| r.job));
        let incident = by_restore.entry(key).or_insert_with(|| Incident {
            app: f.app.clone(),
            start: f.ended,
            failed: Vec::new(),
            restored: f.restored,
        });
        incident.start = incident.start.min(f.ended);
        incident.failed.push(f.job);
    }
    let mut incidents: Vec<Incident> = by_restore.into_values().collect();
    for incident in &mut incidents {
        incident.failed.sort_unstable();
    }
    incidents.sort_by_key(|i| std::cmp::Reverse(i.start));
    incidents
}

#[cfg(test)]
mod tests {
    use super::super::DAY;
    use super::*;

    const MIN: i64 = 60_000;
    // 2026-12-06 02:25:57 UTC
    const NOW: i64 = 1_796_523_957_000;

    fn failure(job: i64, at: i64, cause: Cause, restored: Option<(i64, i64)>) -> Failure {
        Failure {
            app: "web".into(),
            job,
            requested: at - MIN,
            ended: at,
            cause,
            restored: restored.map(|(job, at)| Restore { job, at }),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&mut [], 50), None);
        assert_eq!(percentile(&mut [7], 95), Some(7));
        assert_eq!(percentile(&mut [4, 1, 3, 2], 50), Some(2));
        assert_eq!(percentile(&mut [4, 1, 3, 2], 95), Some(4));
        let mut twenty: Vec<i64> = (1..=20).rev().collect();
        assert_eq!(percentile(&mut twenty, 95), Some(19));
        assert_eq!(percentile(&mut twenty, 50), Some(10));
        assert_eq!(
            Spread::of(vec![30, 10, 20]),
            Some(Spread {
                count: 3,
                p50: 20,
                p95: 30,
                max: 30
            })
        );
    }

    #[test]
    fn failures_restored_by_the_same_release_are_one_incident() {
        let t = NOW - 10 * DAY;
        let failures = [
            failure(1, t, Cause::Failed, Some((3, t + 90 * MIN))),
            failure(2, t + 30 * MIN, Cause::TimedOut, Some((3, t + 90 * MIN))),
            failure(5, t + DAY, Cause::RolledBack, Some((6, t + DAY + 20 * MIN))),
            failure(8, t + 2 * DAY, Cause::Interrupted, None),
        ];
        let got = incidents(&failures);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].failed.clone(), got[0].duration()), (vec![8], None));
        assert_eq!(
            (got[1].failed.clone(), got[1].duration()),
            (vec![5], Some(20 * MIN))
        );
        assert_eq!(
            (got[2].failed.clone(), got[2].start, got[2].duration()),
            (vec![1, 2], t, Some(90 * MIN))
        );
    }

    #[test]
    fn deploys_fill_their_days_and_failures_count_against_them() {
        let window = Window::new(Range::Week, NOW);
        let ran = [
            Ran {
                app: "web".into(),
                day: 0,
                count: 3,
            },
            Ran {
                app: "web".into(),
                day: 6,
                count: 1,
            },
            // Outside the window: ignored, not a panic.
            Ran {
                app: "web".into(),
                day: 9,
                count: 5,
            },
        ];
        let failures = [failure(
            2,
            window.since + 2 * 3_600_000,
            Cause::Failed,
            Some((3, window.since + 3 * 3_600_000)),
        )];
        let lead = vec![30 * MIN, 2 * 60 * MIN, 3 * DAY, 8 * DAY];
        let d = Delivery::new(&window, &ran, &failures, lead);
        assert_eq!((d.deploys, d.failed, d.rolled_back), (4, 1, 0));
        assert_eq!(
            d.buckets.iter().map(|b| b.deploys).collect::<Vec<_>>(),
            [3, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            (d.buckets[0].failed, d.buckets[6].start),
            (1, window.since + 6 * DAY)
        );
        assert_eq!(d.per_week(), 4.0);
        assert_eq!(d.failure_rate(), Some(25.0));
        assert_eq!(d.restore.map(|s| s.p50), Some(60 * MIN));
        assert_eq!(d.lead_bins, [1, 1, 0, 1, 1]);
        assert_eq!(
            d.lead.map(|s| (s.p50, s.p95)),
            Some((2 * 60 * MIN, 8 * DAY))
        );
    }

    #[test]
    fn ninety_days_are_thirteen_weekly_bars_the_last_of_six_days() {
        let window = Window::new(Range::Quarter, NOW);
        let d = Delivery::new(&window, &[], &[], Vec::new());
        assert_eq!(d.buckets.len(), 13);
        assert_eq!((d.buckets[0].days, d.buckets[12].days), (7, 6));
        assert_eq!(d.failure_rate(), None);
        assert_eq!((d.restore, d.lead), (None, None));
    }
}
