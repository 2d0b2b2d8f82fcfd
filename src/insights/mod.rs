//! Delivery insights (README "Insights"): deploys per week, change failure
//! rate, time to restore, lead time (commit → live) and job durations per
//! kind, over the last 7, 30 or 90 days, from the jobs and the release log.
//!
//! `store.rs` reads compact facts with SQL — counts per day, the failed
//! deploys with what restored each, and durations packed one list per
//! kind — so a page costs one pass over an index however many jobs there
//! are; `figures.rs` computes every figure from those facts (pure, and
//! unit-tested). Pages draw them (`web/figures.rs`).

mod figures;
mod store;

use sqlx::SqlitePool;

use crate::error::Quoted;
use crate::{Error, Result};

pub use figures::{
    Bucket, Cause, Delivery, Failure, Incident, KindSpread, LEAD_BINS, Restore, Spread, percentile,
};

/// One day in Unix milliseconds.
pub const DAY: i64 = 86_400_000;

/// The job kinds whose durations are shown, in the order they are shown.
pub const KINDS: [&str; 5] = ["deploy", "rollback", "rotate", "sweep", "action"];

/// How far back the figures look: the `range` of `/insights?range=30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    Week,
    #[default]
    Month,
    Quarter,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Week, Range::Month, Range::Quarter];

    /// The query value, as the range form sends it; none is 30 days.
    pub fn parse(text: Option<&str>) -> Result<Range> {
        match text.map(str::trim) {
            None | Some("") => Ok(Range::default()),
            Some(text) => Range::ALL
                .into_iter()
                .find(|r| r.as_str() == text)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "range must be 7d, 30d or 90d, not {}",
                        Quoted(text)
                    ))
                }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Week => "7d",
            Range::Month => "30d",
            Range::Quarter => "90d",
        }
    }

    pub fn days(self) -> i64 {
        match self {
            Range::Week => 7,
            Range::Month => 30,
            Range::Quarter => 90,
        }
    }

    /// "the last 30 days".
    pub fn label(self) -> String {
        format!("the last {} days", self.days())
    }

    /// A bar per day up to a month; per week beyond (13 bars, not 90).
    fn bucket_days(self) -> i64 {
        match self {
            Range::Week | Range::Month => 1,
            Range::Quarter => 7,
        }
    }
}

/// The time a range covers: whole UTC days, the last of them today (so
/// far). A job belongs to the day it was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Midnight UTC of the first day (Unix milliseconds).
    pub since: i64,
    /// Just after now: the end, exclusive.
    pub until: i64,
    pub days: i64,
    /// Days per bar.
    pub bucket_days: i64,
}

impl Window {
    pub fn new(range: Range, now: i64) -> Window {
        let today = now.div_euclid(DAY) * DAY;
        Window {
            since: today - (range.days() - 1) * DAY,
            until: now + 1,
            days: range.days(),
            bucket_days: range.bucket_days(),
        }
    }

    /// How many bars: the last may cover fewer days (90 days are 12 weeks
    /// and 6 days).
    pub fn buckets(&self) -> usize {
        usize::try_from((self.days + self.bucket_days - 1) / self.bucket_days).unwrap_or(0)
    }

    /// The UTC days (Unix time ÷ a day) the window starts and ends on,
    /// as the per-day tables of migration 0160 count them.
    pub fn first_day(&self) -> i64 {
        self.since.div_euclid(DAY)
    }

    pub fn last_day(&self) -> i64 {
        (self.until - 1).div_euclid(DAY)
    }

    /// The day (0 = the first) a time falls on.
    pub fn day_of(&self, at: i64) -> i64 {
        (at - self.since).div_euclid(DAY)
    }

    /// The bar day `day` belongs to, if it is in the window.
    pub fn bucket_of_day(&self, day: i64) -> Option<usize> {
        if !(0..self.days).contains(&day) {
            return None;
        }
        usize::try_from(day / self.bucket_days).ok()
    }
}

/// Every figure of some apps over a range.
#[derive(Debug, Clone)]
pub struct Insights {
    pub range: Range,
    pub window: Window,
    /// All the apps together.
    pub overall: Delivery,
    /// Each app on its own, in the order asked for.
    pub apps: Vec<(String, Delivery)>,
    /// Job durations per kind (of all the apps), in [`KINDS`] order; kinds
    /// with no job that ran in the range are left out.
    pub durations: Vec<KindSpread>,
}

/// The insights of `apps` (the ones the viewer may see) over `range`, as
/// of `now` (Unix milliseconds).
pub async fn of(db: &SqlitePool, apps: &[String], range: Range, now: i64) -> Result<Insights> {
    let window = Window::new(range, now);
    let facts = store::read(db, apps, &window).await?;
    Ok(facts.insights(range, window, apps))
}

/// An app's deploys over the last 30 days, day by day: its dashboard
/// card's sparkline.
pub async fn recent_deploys(db: &SqlitePool, app: &str, now: i64) -> Result<Delivery> {
    let window = Window::new(Range::Month, now);
    let apps = [app.to_owned()];
    let (ran, failures) = store::deploys(db, &apps, &window).await?;
    Ok(Delivery::new(&window, &ran, &failures, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-06 02:25:57 UTC
    const NOW: i64 = 1_796_523_957_000;

    #[test]
    fn ranges_are_whole_utc_days_ending_today() {
        let w = Window::new(Range::Week, NOW);
        assert_eq!(w.since, 1_796_515_200_000 - 6 * DAY); // 2026-11-30 00:00 UTC
        assert_eq!(w.until, NOW + 1);
        assert_eq!(w.buckets(), 7);
        assert_eq!(w.day_of(NOW), 6);
        assert_eq!(w.bucket_of_day(6), Some(6));
        assert_eq!(w.bucket_of_day(7), None);
        assert_eq!(w.bucket_of_day(-1), None);
        let q = Window::new(Range::Quarter, NOW);
        assert_eq!((q.buckets(), q.bucket_of_day(89)), (13, Some(12)));
        assert_eq!(q.bucket_of_day(83), Some(11));
    }

    #[test]
    fn a_range_is_7d_30d_or_90d() {
        assert_eq!(Range::parse(None).unwrap(), Range::Month);
        assert_eq!(Range::parse(Some("7d")).unwrap(), Range::Week);
        assert_eq!(Range::parse(Some("90d")).unwrap(), Range::Quarter);
        let refused = Range::parse(Some("1y")).unwrap_err();
        assert_eq!(
            refused.public_message(),
            "range must be 7d, 30d or 90d, not \"1y\""
        );
    }
}
