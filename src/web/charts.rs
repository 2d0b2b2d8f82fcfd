//! Charts drawn on the server as SVG, with no script: the geometry of
//! bars in a `viewBox`, which `templates/insights/_chart.html` writes out
//! (`width="100%"`, so a chart shrinks to a phone and never scrolls
//! sideways). Shapes carry classes, not colours: `app.css` colours them
//! from its variables, light or dark. Each chart states its figure in
//! words as well — its `<title>`, a caption, and a table of the numbers
//! behind it — so nothing is only a picture.

use std::fmt;

/// Every chart's `viewBox` width; text is 12 units, about 10.5 px on a
/// 390 px phone and 18 px in a laptop's half-page column.
pub const WIDTH: f64 = 360.0;

/// A chart with its figure and its numbers.
pub struct Chart {
    /// Ids on the page: `chart-{id}`, `{id}-title`.
    pub id: &'static str,
    pub heading: &'static str,
    /// The figure in words: "12.5 % (2 of 16 deploys failed)".
    pub figure: String,
    pub svg: Svg,
    pub table: Table,
}

impl Chart {
    /// The SVG's `<title>`: what a screen reader says, and what a test reads.
    pub fn title(&self) -> String {
        format!("{}: {}", self.heading, self.figure)
    }
}

/// The numbers behind a chart, shown under "Show numbers".
pub struct Table {
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Said under the table (what it leaves out).
    pub note: String,
}

/// A coordinate, written with at most one decimal.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Px(pub f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = (self.0 * 10.0).round();
        if tenths % 10.0 == 0.0 {
            write!(f, "{}", tenths / 10.0)
        } else {
            write!(f, "{:.1}", tenths / 10.0)
        }
    }
}

pub struct Svg {
    pub width: Px,
    pub height: Px,
    pub rects: Vec<Rect>,
    pub labels: Vec<Label>,
    /// The baseline of a column chart.
    pub rules: Vec<(Px, Px, Px, Px)>,
}

pub struct Rect {
    pub x: Px,
    pub y: Px,
    pub w: Px,
    pub h: Px,
    /// `bar-ok`, `bar-failed`, … (`app.css`).
    pub class: &'static str,
    /// Its own `<title>` (a tooltip on hover), if any.
    pub tip: String,
}

pub struct Label {
    pub x: Px,
    pub y: Px,
    /// `start`, `middle` or `end`.
    pub anchor: &'static str,
    pub text: String,
}

/// One part of a stacked bar: its size, class and tooltip.
pub struct Part {
    pub value: i64,
    pub class: &'static str,
    pub tip: String,
}

impl Part {
    pub fn new(value: i64, class: &'static str, tip: impl Into<String>) -> Part {
        Part {
            value,
            class,
            tip: tip.into(),
        }
    }
}

/// A bar of a row chart, with the words written after it.
pub struct Bar {
    pub value: i64,
    pub class: &'static str,
    pub text: String,
}

impl Svg {
    fn new(width: f64, height: f64) -> Svg {
        Svg {
            width: Px(width),
            height: Px(height),
            rects: Vec::new(),
            labels: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn label(&mut self, x: f64, y: f64, anchor: &'static str, text: impl Into<String>) {
        self.labels.push(Label {
            x: Px(x),
            y: Px(y),
            anchor,
            text: text.into(),
        });
    }

    /// Stacked columns, one per slot, scaled to the tallest; the largest
    /// value is written top left, `first` and `last` under the ends.
    pub fn columns(columns: &[Vec<Part>], first: &str, last: &str) -> Svg {
        const TOP: f64 = 18.0;
        const BASE: f64 = 112.0;
        let mut svg = Svg::new(WIDTH, 132.0);
        let tallest = columns
            .iter()
            .map(|parts| parts.iter().map(|p| p.value.max(0)).sum::<i64>())
            .max()
            .unwrap_or(0);
        let slot = WIDTH / columns.len().max(1) as f64;
        let scale = if tallest > 0 {
            (BASE - TOP) / tallest as f64
        } else {
            0.0
        };
        for (i, parts) in columns.iter().enumerate() {
            let mut y = BASE;
            for part in parts.iter().filter(|p| p.value > 0) {
                let h = part.value as f64 * scale;
                y -= h;
                svg.rects.push(Rect {
                    x: Px(i as f64 * slot + slot * 0.15),
                    y: Px(y),
                    w: Px(slot * 0.7),
                    h: Px(h),
                    class: part.class,
                    tip: part.tip.clone(),
                });
            }
        }
        svg.rules.push((Px(0.0), Px(BASE), Px(WIDTH), Px(BASE)));
        svg.label(0.0, 12.0, "start", format!("{tallest}"));
        svg.label(0.0, 128.0, "start", first);
        svg.label(WIDTH, 128.0, "end", last);
        svg
    }

    /// Labelled rows of horizontal bars, all scaled to the largest value,
    /// each bar followed by its words.
    pub fn rows(rows: &[(String, Vec<Bar>)]) -> Svg {
        // Labels of 14 characters, bars, then words of about 14 more.
        const LABEL: f64 = 96.0;
        const LONGEST: f64 = 160.0;
        const BAR: f64 = 12.0;
        const GAP: f64 = 8.0;
        let largest = rows
            .iter()
            .flat_map(|(_, bars)| bars.iter().map(|b| b.value))
            .max()
            .unwrap_or(0)
            .max(1);
        let bars: usize = rows.iter().map(|(_, bars)| bars.len().max(1)).sum();
        let height = (bars as f64 * (BAR + 2.0) + rows.len() as f64 * GAP).max(BAR + GAP);
        let mut svg = Svg::new(WIDTH, height);
        let mut y = GAP / 2.0;
        for (label, row) in rows {
            svg.label(0.0, y + 10.0, "start", label.clone());
            for bar in row {
                let w = (bar.value.max(0) as f64 * LONGEST / largest as f64).max(1.0);
                svg.rects.push(Rect {
                    x: Px(LABEL),
                    y: Px(y),
                    w: Px(w),
                    h: Px(BAR),
                    class: bar.class,
                    tip: String::new(),
                });
                svg.label(LABEL + w + 6.0, y + 10.0, "start", bar.text.clone());
                y += BAR + 2.0;
            }
            if row.is_empty() {
                y += BAR + 2.0;
            }
            y += GAP;
        }
        svg
    }

    /// One bar across the whole width, split into parts by their share.
    pub fn meter(parts: &[Part]) -> Svg {
        Svg::strip(parts, "0 %", "100 %")
    }

    /// [`Svg::meter`] with `first` and `last` written under its ends (a
    /// timeline: equal parts, oldest first).
    pub fn strip(parts: &[Part], first: &str, last: &str) -> Svg {
        let mut svg = Svg::new(WIDTH, 44.0);
        let total: i64 = parts.iter().map(|p| p.value.max(0)).sum();
        if total == 0 {
            svg.rects.push(Rect {
                x: Px(0.0),
                y: Px(4.0),
                w: Px(WIDTH),
                h: Px(20.0),
                class: "bar-none",
                tip: String::new(),
            });
        }
        let mut x = 0.0;
        for part in parts.iter().filter(|p| p.value > 0) {
            let w = part.value as f64 * WIDTH / total as f64;
            svg.rects.push(Rect {
                x: Px(x),
                y: Px(4.0),
                w: Px(w),
                h: Px(20.0),
                class: part.class,
                tip: part.tip.clone(),
            });
            x += w;
        }
        svg.label(0.0, 40.0, "start", first);
        svg.label(WIDTH, 40.0, "end", last);
        svg
    }

    /// A sparkline: a thin stacked column per slot and nothing else; an
    /// empty slot is a tick on the baseline, so the days still read as days.
    pub fn spark(columns: &[Vec<Part>]) -> Svg {
        const HEIGHT: f64 = 24.0;
        const SLOT: f64 = 4.0;
        let mut svg = Svg::new(SLOT * columns.len() as f64, HEIGHT);
        let tallest = columns
            .iter()
            .map(|parts| parts.iter().map(|p| p.value.max(0)).sum::<i64>())
            .max()
            .unwrap_or(0)
            .max(1);
        for (i, parts) in columns.iter().enumerate() {
            let x = Px(i as f64 * SLOT);
            let mut y = HEIGHT;
            for part in parts.iter().filter(|p| p.value > 0) {
                let h = part.value as f64 * (HEIGHT - 1.0) / tallest as f64;
                y -= h;
                svg.rects.push(Rect {
                    x,
                    y: Px(y),
                    w: Px(SLOT - 1.0),
                    h: Px(h),
                    class: part.class,
                    tip: String::new(),
                });
            }
            if y == HEIGHT {
                svg.rects.push(Rect {
                    x,
                    y: Px(HEIGHT - 1.0),
                    w: Px(SLOT - 1.0),
                    h: Px(1.0),
                    class: "bar-none",
                    tip: String::new(),
                });
            }
        }
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(svg: &Svg) {
        for r in &svg.rects {
            assert!(r.x.0 >= 0.0 && r.y.0 >= 0.0 && r.w.0 > 0.0 && r.h.0 > 0.0);
            assert!(r.x.0 + r.w.0 <= svg.width.0 + 0.01, "{} + {}", r.x, r.w);
            assert!(r.y.0 + r.h.0 <= svg.height.0 + 0.01, "{} + {}", r.y, r.h);
        }
    }

    #[test]
    fn coordinates_are_written_short() {
        assert_eq!(Px(12.0).to_string(), "12");
        assert_eq!(Px(13.333).to_string(), "13.3");
        assert_eq!(Px(0.96).to_string(), "1");
    }

    #[test]
    fn columns_stack_and_scale_to_the_tallest() {
        let columns = vec![
            vec![Part::new(2, "bar-ok", ""), Part::new(1, "bar-failed", "")],
            vec![],
            vec![Part::new(6, "bar-ok", "")],
        ];
        let svg = Svg::columns(&columns, "Dec 1", "Dec 3");
        inside(&svg);
        assert_eq!(svg.rects.len(), 3);
        // 6 fills the plot (94 units): 2 is a third of it, 1 a sixth.
        assert_eq!(svg.rects[2].h, Px(94.0));
        assert_eq!(svg.rects[0].h.to_string(), "31.3");
        assert_eq!(svg.rects[1].h.to_string(), "15.7");
        assert_eq!(svg.rects[1].y.0 + svg.rects[1].h.0, svg.rects[0].y.0);
        assert_eq!(svg.labels[0].text, "6");
    }

    #[test]
    fn rows_and_meters_stay_in_their_box() {
        let rows = vec![
            (
                "deploy".to_owned(),
                vec![
                    Bar {
                        value: 90_000,
                        class: "bar-p50",
                        text: "p50 1m 30s".into(),
                    },
                    Bar {
                        value: 240_000,
                        class: "bar-p95",
                        text: "p95 4m 00s".into(),
                    },
                ],
            ),
            ("sweep".to_owned(), vec![]),
        ];
        let svg = Svg::rows(&rows);
        inside(&svg);
        assert_eq!(svg.rects[1].w, Px(160.0));
        let meter = Svg::meter(&[Part::new(3, "bar-ok", ""), Part::new(1, "bar-failed", "")]);
        inside(&meter);
        assert_eq!((meter.rects[0].w, meter.rects[1].w), (Px(270.0), Px(90.0)));
        inside(&Svg::meter(&[]));
    }

    #[test]
    fn a_sparkline_ticks_empty_days() {
        let svg = Svg::spark(&[vec![], vec![Part::new(2, "bar-ok", "")]]);
        inside(&svg);
        assert_eq!(svg.rects[0].class, "bar-none");
        assert_eq!((svg.rects[1].h, svg.width), (Px(23.0), Px(8.0)));
    }
}
