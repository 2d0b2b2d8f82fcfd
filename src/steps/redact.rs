//! Masks an app's env-file values in its jobs' output (DESIGN.md
//! "Secrets"). Every line a job prints, from its children or from opsdeck,
//! passes through the job's [`Redactor`] before it is numbered, broadcast or
//! stored, so a value never reaches the database, a page or a follower.

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
}
