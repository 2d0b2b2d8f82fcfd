//! What the insights section shows — on `/insights` (every app the viewer
//! may see) and on each app's page — and a dashboard card's sparkline:
//! the figures of `crate::insights` as charts (`charts.rs`), each with
//! its figure in words and its numbers. Shared by `insights.rs` and
//! `apps.rs`, so that no page file imports another.

use super::charts::{Bar, Chart, Part, Svg, Table};
use super::page::span;
use crate::insights::{Delivery, Insights, KindSpread, LEAD_BINS, Range};

/// Incidents drawn and listed, newest first; the figure counts them all.
const INCIDENTS_SHOWN: usize = 12;

/// A row label's length in characters: longer ones would run into the bar.
const LABEL_CHARS: usize = 14;

/// The insights section (`insights/_section.html`).
pub struct InsightsView {
    pub range: Range,
    /// The range form's choices: value, words, chosen.
    pub ranges: Vec<(&'static str, String, bool)>,
    /// Where the range form goes: `/insights`, or the app's page.
    pub action: String,
    pub charts: Vec<Chart>,
    /// `/insights`: each app's figures, a row each.
    pub apps: Vec<AppRow>,
}

/// One app's figures in the `/insights` table.
pub struct AppRow {
    pub name: String,
    pub per_week: String,
    pub failure_rate: String,
    pub restore: String,
    pub lead: String,
}

impl InsightsView {
    /// `apps`: list each app in a table of its own (`/insights`).
    pub fn new(insights: &Insights, action: String, apps: bool) -> InsightsView {
        let d = &insights.overall;
        let range = insights.range;
        let now = insights.window.until - 1;
        InsightsView {
            range,
            ranges: Range::ALL
                .into_iter()
                .map(|r| (r.as_str(), format!("{} days", r.days()), r == range))
                .collect(),
            action,
            charts: vec![
                deploys(d, range),
                failure_rate(d, range),
                restore(d, range, now, apps),
                lead(d, range),
                durations(&insights.durations, range),
            ],
            apps: if apps {
                insights.apps.iter().map(AppRow::new).collect()
            } else {
                Vec::new()
            },
        }
    }
}

impl AppRow {
    fn new((name, d): &(String, Delivery)) -> AppRow {
        let none = || "—".to_owned();
        AppRow {
            name: name.clone(),
            per_week: format!("{:.1}", d.per_week()),
            failure_rate: d.failure_rate().map_or_else(none, percent),
            restore: d.restore.map_or_else(none, |s| span(s.p50)),
            lead: d.lead.map_or_else(none, |s| span(s.p50)),
        }
    }
}

/// A dashboard card's sparkline (`insights/_sparkline.html`): deploys per
/// day over the last 30 days, failed ones in red.
pub struct Spark {
    pub app: String,
    pub title: String,
    /// Beside it: "12 in 30 days, 1 failed".
    pub summary: String,
    pub svg: Svg,
}

impl Spark {
    pub fn new(app: &str, d: &Delivery) -> Spark {
        Spark {
            app: app.to_owned(),
            title: format!(
                "Deploys in {}: {}, {} failed",
                Range::Month.label(),
                d.deploys,
                d.failed
            ),
            summary: format!("{} in {} days, {} failed", d.deploys, d.days, d.failed),
            svg: Svg::spark(&d.buckets.iter().map(columns).collect::<Vec<_>>()),
        }
    }
}

/// A bar's parts: the deploys that went well, then the failed ones.
fn columns(b: &crate::insights::Bucket) -> Vec<Part> {
    let tip = format!(
        "{}: {}, {} failed",
        bucket_name(b),
        plural(b.deploys, "deploy"),
        b.failed
    );
    vec![
        Part::new((b.deploys - b.failed).max(0), "bar-ok", tip.clone()),
        Part::new(b.failed, "bar-failed", tip),
    ]
}

/// "2026-12-03", or for a week "week from 2026-11-30".
fn bucket_name(b: &crate::insights::Bucket) -> String {
    if b.days == 1 {
        day(b.start)
    } else {
        format!("week from {}", day(b.start))
    }
}

fn deploys(d: &Delivery, range: Range) -> Chart {
    let figure = if d.deploys == 0 {
        format!("none in {}", range.label())
    } else {
        format!(
            "{:.1} ({} in {}, {} failed)",
            d.per_week(),
            plural(d.deploys, "deploy"),
            range.label(),
            d.failed
        )
    };
    let first = d.buckets.first().map(|b| short_date(b.start));
    let last = d.buckets.last().map(|b| short_date(b.start));
    Chart {
        id: "deploys",
        heading: "Deploys per week",
        figure,
        svg: Svg::columns(
            &d.buckets.iter().map(columns).collect::<Vec<_>>(),
            &first.unwrap_or_default(),
            &last.unwrap_or_default(),
        ),
        table: Table {
            head: vec![
                if d.buckets.first().is_some_and(|b| b.days > 1) {
                    "Week from"
                } else {
                    "Day"
                },
                "Deploys",
                "Failed",
            ],
            rows: d
                .buckets
                .iter()
                .map(|b| vec![day(b.start), b.deploys.to_string(), b.failed.to_string()])
                .collect(),
            note: String::new(),
        },
    }
}

fn failure_rate(d: &Delivery, range: Range) -> Chart {
    let figure = match d.failure_rate() {
        None => format!("no deploys in {}", range.label()),
        Some(rate) => format!(
            "{} ({} of {} failed)",
            percent(rate),
            d.failed,
            plural(d.deploys, "deploy")
        ),
    };
    let by_job = d.failed - d.rolled_back;
    let went_well = d.deploys - d.failed;
    Chart {
        id: "failure-rate",
        heading: "Change failure rate",
        figure,
        svg: Svg::meter(&[
            Part::new(went_well, "bar-ok", format!("{went_well} went well")),
            Part::new(by_job, "bar-failed", format!("{by_job} failed")),
            Part::new(
                d.rolled_back,
                "bar-rolled",
                format!("{} rolled back", d.rolled_back),
            ),
        ]),
        table: Table {
            head: vec!["", "Deploys"],
            rows: vec![
                vec!["Deploys".into(), d.deploys.to_string()],
                vec![
                    "Failed: the job failed, timed out or was interrupted".into(),
                    by_job.to_string(),
                ],
                vec![
                    "Failed: went live, later rolled back".into(),
                    d.rolled_back.to_string(),
                ],
                vec![
                    "Change failure rate".into(),
                    d.failure_rate().map_or_else(|| "—".into(), percent),
                ],
            ],
            note: String::new(),
        },
    }
}

fn restore(d: &Delivery, range: Range, now: i64, apps: bool) -> Chart {
    let open = d.open();
    let figure = match (d.incidents.len(), d.restore) {
        (0, _) => format!("no failed deploys in {}", range.label()),
        (_, Some(s)) if open > 0 => format!(
            "median {} ({} restored, {open} not yet)",
            span(s.p50),
            plural(s.count as i64, "incident")
        ),
        (_, Some(s)) => format!(
            "median {} ({} restored)",
            span(s.p50),
            plural(s.count as i64, "incident")
        ),
        (n, None) => format!("not restored yet ({})", plural(n as i64, "incident")),
    };
    let shown = &d.incidents[..d.incidents.len().min(INCIDENTS_SHOWN)];
    let rows = shown
        .iter()
        .map(|i| {
            let name = if apps {
                format!("{} {}", short_date(i.start), i.app)
            } else {
                short_date(i.start)
            };
            let bar = match i.duration() {
                Some(ms) => Bar {
                    value: ms,
                    class: "bar-restore",
                    text: span(ms),
                },
                None => Bar {
                    value: now - i.start,
                    class: "bar-failed",
                    text: format!("open {}", span(now - i.start)),
                },
            };
            (fit_label(&name), vec![bar])
        })
        .collect::<Vec<_>>();
    Chart {
        id: "restore",
        heading: "Time to restore",
        figure,
        svg: Svg::rows(&rows),
        table: Table {
            head: vec![
                "Started (UTC)",
                "App",
                "Failed deploys",
                "Restored by",
                "Time to restore",
            ],
            rows: shown
                .iter()
                .map(|i| {
                    let jobs: Vec<String> = i.failed.iter().map(|j| format!("#{j}")).collect();
                    vec![
                        crate::audit::format_time(i.start),
                        i.app.clone(),
                        jobs.join(", "),
                        i.restored
                            .map_or_else(|| "not yet".into(), |r| format!("#{}", r.job)),
                        i.duration().map_or_else(|| "—".into(), span),
                    ]
                })
                .collect(),
            note: if d.incidents.len() > shown.len() {
                format!(
                    "The {} newest of {} incidents.",
                    shown.len(),
                    d.incidents.len()
                )
            } else {
                String::new()
            },
        },
    }
}

fn lead(d: &Delivery, range: Range) -> Chart {
    let figure = match d.lead {
        None => format!(
            "no deploy went live in {} with a known commit time",
            range.label()
        ),
        Some(s) => format!(
            "median {}, p95 {} ({})",
            span(s.p50),
            span(s.p95),
            plural(s.count as i64, "deploy")
        ),
    };
    let rows: Vec<(String, Vec<Bar>)> = LEAD_BINS
        .iter()
        .zip(d.lead_bins)
        .map(|((_, name), n)| {
            let bar = Bar {
                value: n as i64,
                class: "bar-lead",
                text: n.to_string(),
            };
            (
                (*name).to_owned(),
                if n > 0 { vec![bar] } else { Vec::new() },
            )
        })
        .collect();
    let mut table_rows: Vec<Vec<String>> = LEAD_BINS
        .iter()
        .zip(d.lead_bins)
        .map(|((_, name), n)| vec![(*name).to_owned(), n.to_string()])
        .collect();
    if let Some(s) = d.lead {
        table_rows.push(vec!["median".into(), span(s.p50)]);
        table_rows.push(vec!["p95".into(), span(s.p95)]);
        table_rows.push(vec!["longest".into(), span(s.max)]);
    }
    Chart {
        id: "lead",
        heading: "Lead time (commit → live)",
        figure,
        svg: Svg::rows(&rows),
        table: Table {
            head: vec!["Lead time", "Deploys"],
            rows: table_rows,
            note: String::new(),
        },
    }
}

fn durations(kinds: &[KindSpread], range: Range) -> Chart {
    let figure = if kinds.is_empty() {
        format!("no job ran in {}", range.label())
    } else {
        kinds
            .iter()
            .map(|k| {
                format!(
                    "{} p50 {}, p95 {} ({})",
                    k.kind,
                    span(k.spread.p50),
                    span(k.spread.p95),
                    plural(k.spread.count as i64, "job")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let rows: Vec<(String, Vec<Bar>)> = kinds
        .iter()
        .map(|k| {
            (
                k.kind.clone(),
                vec![
                    Bar {
                        value: k.spread.p50,
                        class: "bar-p50",
                        text: format!("p50 {}", span(k.spread.p50)),
                    },
                    Bar {
                        value: k.spread.p95,
                        class: "bar-p95",
                        text: format!("p95 {}", span(k.spread.p95)),
                    },
                ],
            )
        })
        .collect();
    Chart {
        id: "durations",
        heading: "Job duration",
        figure,
        svg: Svg::rows(&rows),
        table: Table {
            head: vec!["Kind", "Jobs", "p50", "p95", "Longest"],
            rows: kinds
                .iter()
                .map(|k| {
                    vec![
                        k.kind.clone(),
                        k.spread.count.to_string(),
                        span(k.spread.p50),
                        span(k.spread.p95),
                        span(k.spread.max),
                    ]
                })
                .collect(),
            note: String::new(),
        },
    }
}

/// "1 deploy", "3 deploys".
fn plural(n: i64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn percent(rate: f64) -> String {
    format!("{rate:.1} %")
}

/// "2026-12-03" (UTC).
fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// "Dec 3" (UTC), under a chart.
fn short_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%b %-d")
        .to_string()
}

/// A row label cut to what fits before its bar.
fn fit_label(label: &str) -> String {
    match label.char_indices().nth(LABEL_CHARS) {
        None => label.to_owned(),
        Some((cut, _)) => format!("{}…", &label[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_figures() {
        assert_eq!(plural(1, "deploy"), "1 deploy");
        assert_eq!(plural(0, "deploy"), "0 deploys");
        assert_eq!(percent(12.5), "12.5 %");
        assert_eq!(percent(100.0 / 3.0), "33.3 %");
        assert_eq!(day(1_796_523_957_000), "2026-12-06");
        assert_eq!(short_date(1_796_523_957_000), "Dec 6");
        assert_eq!(fit_label("Dec 13 books-and-more"), "Dec 13 books-a…");
        assert_eq!(fit_label("Dec 13 web"), "Dec 13 web");
    }
}
