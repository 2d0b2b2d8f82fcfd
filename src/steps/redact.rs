//! Masks an app's env-file values in its jobs' output (DESIGN.md
//! "Secrets"). Every line a job prints, from its children or from opsdeck,
//! passes through the job's [`Redactor`] before it is numbered, broadcast or
//! stored, so a value never reaches the database, a page or a follower.
//!
//! A line longer than `MAX_LINE` is cut by the splitter before it gets
//! here, and a value straddling the cut would be whole in neither piece:
//! [`MaskedStream`] joins the pieces again before masking, and holds back
//! the end of a line still being printed for as long as a value could be
//! only partly printed in it.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard};

use aho_corasick::{AhoCorasick, MatchKind};

use crate::host::envfile;
use crate::host::lines::Lines;

/// What replaces a value.
const MASK: &str = "[redacted]";

/// Values shorter than this are not masked unless their key names a secret:
/// ports, booleans and `production` would otherwise turn every line into
/// noise, and a value that short is no secret anyway.
const MIN_PLAIN: usize = 8;
/// Values of keys that name a secret (or are declared secrets) are masked
/// from this length on.
const MIN_SECRET: usize = 3;

/// The values one job masks; grows when a step makes a new one.
#[derive(Default)]
pub struct Redactor {
    inner: Mutex<Masks>,
}

#[derive(Default)]
struct Masks {
    values: Vec<String>,
    /// Longest values first wins, so a value containing another is masked whole.
    matcher: Option<AhoCorasick>,
    /// The longest value's length in bytes.
    longest: usize,
}

impl Redactor {
    fn lock(&self) -> MutexGuard<'_, Masks> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Masks from now on every value in `text` (an env file) worth masking;
    /// `secrets` are the keys declared as secrets (masked however short).
    pub fn learn_text(&self, text: &str, secrets: &[String]) {
        let values = envfile::redactable(text)
            .into_iter()
            .filter(|(key, value)| {
                let secret = key
                    .as_deref()
                    .is_some_and(|k| secrets.iter().any(|s| s == k) || names_a_secret(k));
                value.len() >= if secret { MIN_SECRET } else { MIN_PLAIN }
            })
            .map(|(_, value)| value);
        self.learn(values);
    }

    /// Masks `values` from now on (a value a step just made). Output is
    /// masked a batch of lines at a time, so a value of several lines (a
    /// quoted PEM key) is learned as its lines, each long enough to be
    /// its own.
    pub fn learn(&self, values: impl IntoIterator<Item = String>) {
        let mut masks = self.lock();
        let before = masks.values.len();
        for value in values {
            let several = value.contains('\n');
            for part in value.split('\n') {
                let worth = if several {
                    part.len() >= MIN_PLAIN
                } else {
                    !part.is_empty()
                };
                if worth && !masks.values.iter().any(|v| v == part) {
                    masks.values.push(part.to_owned());
                }
            }
        }
        if masks.values.len() == before {
            return;
        }
        masks.longest = masks.values.iter().map(String::len).max().unwrap_or(0);
        masks.matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&masks.values)
            .ok();
    }

    /// `line` with every known value masked.
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let masks = self.lock();
        match &masks.matcher {
            Some(matcher) if matcher.is_match(line) => {
                Cow::Owned(matcher.replace_all(line, &vec![MASK; masks.values.len()]))
            }
            _ => Cow::Borrowed(line),
        }
    }

    /// Where `line`, whose rest is still to come, can be cut so that no
    /// value straddles the cut: before the last `longest - 1` bytes (a
    /// value that goes on in the rest starts there), and before any value
    /// found across that point.
    fn safe_cut(&self, line: &str) -> usize {
        let masks = self.lock();
        let mut at = line.len().saturating_sub(masks.longest.saturating_sub(1));
        if let Some(matcher) = &masks.matcher
            && let Some(found) = matcher
                .find_iter(line)
                .find(|m| m.start() < at && at < m.end())
        {
            at = found.start();
        }
        while !line.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// Masks every line of a batch in place, all in one pass (no value
    /// masked spans lines: env values are single lines).
    pub fn mask_lines(&self, lines: &mut Lines) {
        if self.lock().matcher.is_none() {
            return;
        }
        if let Cow::Owned(masked) = self.mask(lines.text()) {
            lines.replace_text(masked);
        }
    }
}

/// A job's output stream as it is masked, batch by batch: lines cut at
/// `MAX_LINE` are joined before masking, and the end of a line whose
/// rest is still to come waits in `held`.
pub struct MaskedStream<'r> {
    redactor: &'r Redactor,
    /// The unmasked end of a cut line, to go before its rest.
    held: String,
}

impl<'r> MaskedStream<'r> {
    pub fn new(redactor: &'r Redactor) -> MaskedStream<'r> {
        MaskedStream {
            redactor,
            held: String::new(),
        }
    }

    /// `batch` masked; it may come out with more or fewer lines (a long
    /// line re-cut after masking, the end of an unfinished one held back).
    pub fn mask(&mut self, mut batch: Lines) -> Lines {
        if self.held.is_empty() && !batch.has_cuts() {
            self.redactor.mask_lines(&mut batch);
            return batch;
        }
        let mut masked = Lines::default();
        let mut line = std::mem::take(&mut self.held);
        for (index, piece) in batch.iter().enumerate() {
            line.push_str(piece);
            if !batch.is_cut(index) {
                masked.push_long(&self.redactor.mask(&line), true);
                line.clear();
            }
        }
        if !line.is_empty() {
            let at = self.redactor.safe_cut(&line);
            if at > 0 {
                masked.push_long(&self.redactor.mask(&line[..at]), false);
            }
            self.held = line.split_off(at);
        }
        masked
    }

    /// What is still held back, masked, when the output ends.
    pub fn finish(&mut self) -> Lines {
        let mut rest = Lines::default();
        if !self.held.is_empty() {
            rest.push_long(&self.redactor.mask(&self.held), true);
            self.held.clear();
        }
        rest
    }
}

/// `SECRET_KEY`, `GITEA_TOKEN`, `DB_PASSWORD`, …
fn names_a_secret(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASS",
        "KEY",
        "PRIVATE",
        "CREDENTIAL",
        "AUTH",
        "SALT",
    ]
    .iter()
    .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lines::MAX_LINE;

    #[test]
    fn masks_values_longest_first_and_leaves_short_plain_ones() {
        let env = "PORT=8000\nSECRET_KEY=abc\nDATABASE_URL=postgres://u:pw@db/app\nLONG=postgres://u:pw@db/app/x\nnot a line\n";
        let r = Redactor::default();
        assert_eq!(r.mask("nothing known yet"), "nothing known yet");
        r.learn_text(env, &[]);
        assert_eq!(r.mask("listening on 8000"), "listening on 8000");
        assert_eq!(r.mask("key abc."), "key [redacted].");
        assert_eq!(
            r.mask("to postgres://u:pw@db/app/x and postgres://u:pw@db/app"),
            "to [redacted] and [redacted]"
        );
        assert_eq!(r.mask("echo not a line"), "echo [redacted]");
        r.learn([
            "fresh-value".to_string(),
            "-----BEGIN-----\nkeymaterial42\nab".into(),
        ]);
        let mut lines: Lines = ["fresh-value!", "ok", "keymaterial42", "ab"]
            .into_iter()
            .collect();
        r.mask_lines(&mut lines);
        let masked: Vec<&str> = lines.iter().collect();
        assert_eq!(masked, ["[redacted]!", "ok", "[redacted]", "ab"]);
    }

    /// What the splitter makes of `text` arriving in `reads`, through a
    /// masked stream: the lines as stored.
    fn streamed(r: &Redactor, reads: &[&[u8]]) -> Vec<String> {
        let mut splitter = crate::host::lines::LineSplitter::default();
        let mut stream = MaskedStream::new(r);
        let mut out = Vec::new();
        for read in reads {
            out.extend(stream.mask(splitter.push(read)).iter().map(str::to_owned));
        }
        out.extend(stream.mask(splitter.finish()).iter().map(str::to_owned));
        out.extend(stream.finish().iter().map(str::to_owned));
        out
    }

    #[test]
    fn a_value_straddling_the_line_cut_is_masked() {
        let r = Redactor::default();
        let value = "s3cr3t-value-0123456789abcdef";
        r.learn_text(&format!("SECRET_KEY={value}\n"), &[]);
        // The value straddles the cut at MAX_LINE, then the newline comes
        // in a read of its own (as from a program that waits a second).
        let filler = "f".repeat(MAX_LINE - 20);
        let first = format!("{filler}SECRET_KEY={value}");
        let lines = streamed(&r, &[first.as_bytes(), b"\nnext line\n"]);
        let all = lines.join("\n");
        assert!(!all.contains(&value[..8]), "a piece of the value shows");
        assert!(
            !all.contains(&value[value.len() - 8..]),
            "a piece of the value shows"
        );
        assert!(
            all.contains("SECRET_KEY=[redacted]"),
            "{}",
            &all[all.len() - 60..]
        );
        assert_eq!(lines.last().unwrap(), "next line");
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE));
        // Every other byte is kept, in order (the long line in pieces).
        assert_eq!(
            lines.concat(),
            format!("{filler}SECRET_KEY=[redacted]next line")
        );

        // Cut several times within one read, the value across the second cut.
        let long = format!("{}{value}{}", "g".repeat(2 * MAX_LINE - 5), "h".repeat(9));
        let all = streamed(&r, &[long.as_bytes()]).join("");
        assert_eq!(all, long.replace(value, "[redacted]"));

        // Nothing learned: lines pass as they are.
        let plain = Redactor::default();
        assert_eq!(streamed(&plain, &[first.as_bytes()]).join(""), first);
    }
}
