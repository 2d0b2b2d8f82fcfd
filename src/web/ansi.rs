//! Colour in job output: builds (`npm`, `cargo`, `pytest`) print ANSI SGR
//! codes (`ESC[1;32m`), which the job page shows as colours instead of
//! `[1;32m`. Text is HTML-escaped; colours become `<span class="ansi-…">`
//! (classes, since the CSP forbids inline styles: the 16 terminal colours,
//! 256-colour codes below 16, bold, dim, italic, underline). Any other
//! escape sequence (cursor moves, window titles) and control character is
//! dropped. Each line starts uncoloured, as the page receives lines one by
//! one.

/// One line of output as HTML.
pub fn to_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut style = Style::default();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters, then one final byte (`m` = colours).
                Some('[') => {
                    let mut params = String::new();
                    let mut last = None;
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            last = Some(c);
                            break;
                        }
                        params.push(c);
                    }
                    if last == Some('m') {
                        let before = style.clone();
                        style.apply(&params);
                        if style != before {
                            if !before.is_plain() {
                                out.push_str("</span>");
                            }
                            if !style.is_plain() {
                                out.push_str(&format!("<span class=\"{}\">", style.classes()));
                            }
                        }
                    }
                }
                // OSC (a window title, a hyperlink): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    if !style.is_plain() {
        out.push_str("</span>");
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Style {
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    /// 0–15: the terminal's 16 colours.
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Style {
    fn is_plain(&self) -> bool {
        *self == Style::default()
    }

    /// Applies SGR parameters (`1;32`; empty = reset).
    fn apply(&mut self, params: &str) {
        let mut codes = params.split([';', ':']).map(|p| {
            if p.is_empty() {
                0
            } else {
                p.parse().unwrap_or(u16::MAX)
            }
        });
        while let Some(code) = codes.next() {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                49 => self.bg = None,
                // 256 colours (`38;5;n`) and true colour (`38;2;r;g;b`):
                // the first 16 map to classes, the rest stay uncoloured.
                38 | 48 => {
                    let colour = match codes.next() {
                        Some(5) => codes.next().filter(|n| *n < 16).map(|n| n as u8),
                        Some(2) => {
                            codes.by_ref().take(3).for_each(drop);
                            None
                        }
                        _ => None,
                    };
                    if code == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
        }
    }

    fn classes(&self) -> String {
        let mut classes = Vec::new();
        for (on, class) in [
            (self.bold, "ansi-bold"),
            (self.dim, "ansi-dim"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(class.to_owned());
            }
        }
        classes.extend(self.fg.map(|n| format!("ansi-fg-{n}")));
        classes.extend(self.bg.map(|n| format!("ansi-bg-{n}")));
        classes.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn colours_become_classed_spans() {
        assert_eq!(
            to_html("\x1b[1;32mok\x1b[0m 3 passed"),
            r#"<span class="ansi-bold ansi-fg-2">ok</span> 3 passed"#
        );
        assert_eq!(
            to_html("\x1b[31merror\x1b[39m: \x1b[93mwarn"),
            r#"<span class="ansi-fg-1">error</span>: <span class="ansi-fg-11">warn</span>"#
        );
        assert_eq!(
            to_html("\x1b[41;97m FAIL \x1b[m"),
            r#"<span class="ansi-fg-15 ansi-bg-1"> FAIL </span>"#
        );
    }

    #[test]
    fn text_is_escaped_and_other_sequences_are_dropped() {
        assert_eq!(
            to_html("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        // Cursor moves, a window title, a hyperlink, a bell, a carriage return.
        assert_eq!(
            to_html("\x1b[2K\x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x07\rdone"),
            "linkdone"
        );
        assert_eq!(to_html("tab\there"), "tab\there");
    }

    #[test]
    fn extended_colours_map_when_they_can() {
        assert_eq!(
            to_html("\x1b[38;5;9mred\x1b[0m"),
            r#"<span class="ansi-fg-9">red</span>"#
        );
        // 256-colour 208 and true colour have no class: plain text.
        assert_eq!(to_html("\x1b[38;5;208mo\x1b[38;2;1;2;3mt"), "ot");
        // A 38;2 with its colour, then bold: the bold still applies.
        assert_eq!(
            to_html("\x1b[38;2;1;2;3;1mb"),
            r#"<span class="ansi-bold">b</span>"#
        );
    }

    #[test]
    fn an_unclosed_colour_ends_with_the_line_and_junk_is_harmless() {
        assert_eq!(
            to_html("\x1b[33mstill"),
            r#"<span class="ansi-fg-3">still</span>"#
        );
        assert_eq!(to_html("\x1b[99999999mx\x1b"), "x");
        assert_eq!(to_html("\x1b["), "");
    }
}
