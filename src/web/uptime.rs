//! An app's uptime bars (its page's "Uptime" section): the health watch's
//! samples over the last 24 hours and 7 days as a strip of equal slots —
//! green all up, red any probe down, grey no probe — each slot with its
//! own `<title>`, the bar's figure in its title and the numbers in a table.

use std::time::Duration;

use super::charts::{Chart, Part, Svg, Table};
use crate::ops::health_watch::{self, Slot};
use crate::{Result, config::App};

/// The two bars: id, heading, span, slots (half hours, two hours), its
/// start's words.
const BARS: [(&str, &str, u64, usize, &str); 2] = [
    (
        "uptime-24h",
        "Uptime, last 24 hours",
        24 * 3600,
        48,
        "24 h ago",
    ),
    (
        "uptime-7d",
        "Uptime, last 7 days",
        7 * 24 * 3600,
        84,
        "7 days ago",
    ),
];

/// The app's bars, or none when nothing watches it (no `interval`).
pub async fn bars(db: &sqlx::SqlitePool, app: &App, now: i64) -> Result<Vec<Chart>> {
    if health_watch::interval(app).is_none() {
        return Ok(Vec::new());
    }
    let mut charts = Vec::new();
    for (id, heading, span, slots, first) in BARS {
        let bar =
            health_watch::uptime(db, &app.name, Duration::from_secs(span), slots, now).await?;
        charts.push(chart(id, heading, &bar, first));
    }
    Ok(charts)
}

fn chart(id: &'static str, heading: &'static str, bar: &[Slot], first: &str) -> Chart {
    let parts: Vec<Part> = bar
        .iter()
        .map(|slot| Part::new(1, class(slot), format!("{}: {}", when(slot), said(slot))))
        .collect();
    Chart {
        id,
        heading,
        figure: figure(bar),
        svg: Svg::strip(&parts, first, "now"),
        table: Table {
            head: vec!["From (UTC)", "Probes up", "Probes down"],
            rows: bar
                .iter()
                .filter(|s| s.up + s.down > 0)
                .map(|s| vec![when(s), s.up.to_string(), s.down.to_string()])
                .collect(),
            note: "Slots without a probe (opsdeck was not running) are left out.".into(),
        },
    }
}

/// "83.3 % up (10 of 60 probes down)" over the slots of `bar`.
fn figure(bar: &[Slot]) -> String {
    let up: i64 = bar.iter().map(|s| s.up).sum();
    let down: i64 = bar.iter().map(|s| s.down).sum();
    match up + down {
        0 => "no probes yet".to_string(),
        all => format!(
            "{:.1} % up ({down} of {all} probes down)",
            up as f64 * 100.0 / all as f64
        ),
    }
}

/// A dashboard card's line: the last 24 hours' figure, for a watched app.
pub async fn last_day(db: &sqlx::SqlitePool, app: &App, now: i64) -> Result<Option<String>> {
    if health_watch::interval(app).is_none() {
        return Ok(None);
    }
    let day = health_watch::uptime(db, &app.name, Duration::from_secs(24 * 3600), 1, now).await?;
    Ok(Some(figure(&day)))
}

fn class(slot: &Slot) -> &'static str {
    match (slot.up, slot.down) {
        (0, 0) => "bar-none",
        (_, 0) => "bar-ok",
        _ => "bar-failed",
    }
}

fn said(slot: &Slot) -> String {
    match (slot.up, slot.down) {
        (0, 0) => "no probes".into(),
        (up, 0) => format!("up ({up} probes)"),
        (up, down) => format!("down in {down} of {} probes", up + down),
    }
}

fn when(slot: &Slot) -> String {
    let at = |ms| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%a %H:%M").to_string())
            .unwrap_or_default()
    };
    format!("{}–{}", at(slot.start), at(slot.end))
}
