//! Output lines as one text: how a job's output travels from the child's
//! pipe to the live viewers and the database. A build printing a million
//! lines would otherwise cost a million allocations (and frees, on another
//! thread) — more CPU than the build itself on a small host.

/// Longest line kept as one line; longer output is split so one runaway
/// line cannot hold the whole output in memory.
pub const MAX_LINE: usize = 64 * 1024;

/// Consecutive lines: `text` holds each followed by `\n`; `ends` where
/// each line's `\n` is; `cut` which lines were cut at [`MAX_LINE`] and go
/// on in the next line (the program printed no newline there); `stderr`
/// which lines the program wrote to stderr, as sorted half-open ranges of
/// line indexes — one range per batch read from the stderr pipe, none for
/// stdout, so plain output costs nothing more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    text: String,
    ends: Vec<usize>,
    cut: Vec<usize>,
    stderr: Vec<(usize, usize)>,
}

/// Whether line `index` falls in one of `ranges` (sorted, half-open).
pub fn in_ranges(ranges: &[(usize, usize)], index: usize) -> bool {
    let at = ranges.partition_point(|&(_, end)| end <= index);
    ranges.get(at).is_some_and(|&(start, _)| start <= index)
}

impl Lines {
    /// Lines from text joined by `\n` (as stored: no `\n` after the last).
    pub fn from_joined(mut text: String) -> Lines {
        text.push('\n');
        let ends = memchr::memchr_iter(b'\n', text.as_bytes()).collect();
        Lines {
            text,
            ends,
            ..Lines::default()
        }
    }

    /// Marks every line as written to stderr (a batch from the stderr pipe).
    pub fn mark_stderr(&mut self) {
        self.stderr.clear();
        if !self.is_empty() {
            self.stderr.push((0, self.len()));
        }
    }

    /// Whether every line (at least one) was written to stderr.
    pub fn all_stderr(&self) -> bool {
        self.stderr == [(0, self.len())] && !self.is_empty()
    }

    /// Which lines were written to stderr: sorted half-open index ranges.
    pub fn stderr(&self) -> &[(usize, usize)] {
        &self.stderr
    }

    /// These lines with `ranges` (as [`Lines::stderr`] gives them) marked
    /// as stderr; ranges beyond the last line are dropped.
    pub fn with_stderr(mut self, ranges: impl IntoIterator<Item = (usize, usize)>) -> Lines {
        let len = self.len();
        self.stderr = ranges
            .into_iter()
            .map(|(start, end)| (start, end.min(len)))
            .filter(|(start, end)| start < end)
            .collect();
        self
    }

    /// Adds `line`; a `\n` inside it starts another line, so that the
    /// lines numbered are the lines stored.
    pub fn push(&mut self, line: &str) {
        for part in line.split('\n') {
            self.text.push_str(part);
            self.ends.push(self.text.len());
            self.text.push('\n');
        }
    }

    /// Adds `text` as one line, cut into pieces of at most [`MAX_LINE`]
    /// bytes (at character boundaries) when longer; `finished` false when
    /// its end is still to come, so that its last piece is marked cut too.
    pub fn push_long(&mut self, mut text: &str, finished: bool) {
        while text.len() > MAX_LINE {
            let mut at = MAX_LINE;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let (piece, rest) = text.split_at(at);
            self.cut.push(self.len());
            self.push(piece);
            text = rest;
        }
        if !finished {
            self.cut.push(self.len());
        }
        self.push(text);
    }

    /// Whether line `index` was cut and goes on in the next line.
    pub fn is_cut(&self, index: usize) -> bool {
        self.cut.binary_search(&index).is_ok()
    }

    pub fn has_cuts(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Adds one line of a program's output: a trailing `\r` dropped,
    /// invalid UTF-8 decoded lossily.
    fn push_output(&mut self, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        // The strict check is much faster than the lossy one on valid
        // text, which nearly every line is.
        match std::str::from_utf8(bytes) {
            Ok(text) => self.text.push_str(text),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(bytes)),
        }
        self.ends.push(self.text.len());
        self.text.push('\n');
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every line followed by `\n`.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|end| end + 1));
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }

    /// Replaces the text by `text` with the same lines (a masked copy),
    /// which keep their stderr marks.
    pub fn replace_text(&mut self, text: String) {
        let stderr = std::mem::take(&mut self.stderr);
        *self = Lines::from_joined(text);
        self.text.pop();
        self.ends.pop();
        self.stderr = stderr;
    }
}

impl<S: AsRef<str>> FromIterator<S> for Lines {
    fn from_iter<I: IntoIterator<Item = S>>(lines: I) -> Lines {
        let mut all = Lines::default();
        for line in lines {
            all.push(line.as_ref());
        }
        all
    }
}

impl From<String> for Lines {
    fn from(line: String) -> Lines {
        let mut lines = Lines::default();
        lines.push(&line);
        lines
    }
}

/// Cuts a byte stream into lines (`\n`, with a trailing `\r` dropped),
/// decoding invalid UTF-8 lossily.
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// The whole lines `bytes` completes.
    pub fn push(&mut self, mut bytes: &[u8]) -> Lines {
        let mut lines = Lines {
            text: String::with_capacity(bytes.len() + self.partial.len()),
            ..Lines::default()
        };
        while let Some(end) = memchr::memchr(b'\n', bytes) {
            if self.partial.is_empty() {
                lines.push_output(&bytes[..end]);
            } else {
                self.partial.extend_from_slice(&bytes[..end]);
                lines.push_output(&self.partial);
                self.partial.clear();
            }
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        // Strictly longer: a cut line is always followed by its rest, from
        // this same splitter (`finish` at the latest).
        while self.partial.len() > MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            lines.cut.push(lines.len());
            lines.push_output(&self.partial);
            self.partial = rest;
        }
        lines
    }

    /// The last line, if the stream did not end with a newline.
    pub fn finish(&mut self) -> Lines {
        let mut lines = Lines::default();
        if !self.partial.is_empty() {
            lines.push_output(&self.partial);
            self.partial.clear();
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(lines: &Lines) -> Vec<&str> {
        lines.iter().collect()
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut s = LineSplitter::default();
        assert_eq!(strings(&s.push(b"one\ntw")), ["one"]);
        assert_eq!(strings(&s.push(b"o\r\n\nthree")), ["two", ""]);
        assert_eq!(strings(&s.finish()), ["three"]);
        assert!(s.finish().is_empty());
        assert_eq!(strings(&s.push(b"caf\xe9\n")), ["caf\u{fffd}"]);
    }

    #[test]
    fn a_runaway_line_is_cut() {
        let mut s = LineSplitter::default();
        let lines = s.push(&vec![b'x'; MAX_LINE * 2 + 3]);
        assert_eq!(lines.len(), 2);
        assert!(lines.is_cut(0) && lines.is_cut(1));
        let rest = s.finish();
        assert_eq!(strings(&rest), ["xxx"]);
        assert!(!rest.has_cuts());
        // Exactly MAX_LINE waits for its end: nothing is cut yet.
        assert!(s.push(&vec![b'y'; MAX_LINE]).is_empty());
        assert_eq!(s.finish().len(), 1);
    }

    #[test]
    fn a_long_text_is_pushed_in_pieces_at_character_boundaries() {
        let mut lines = Lines::default();
        let text = format!("{}é{}", "a".repeat(MAX_LINE - 1), "b".repeat(10));
        lines.push_long(&text, true);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines.iter().next().unwrap().len(), MAX_LINE - 1);
        assert!(lines.is_cut(0) && !lines.is_cut(1));
        lines.push_long("unfinished", false);
        assert!(lines.is_cut(2));
        assert_eq!(
            lines.iter().collect::<String>(),
            format!("{text}unfinished")
        );
    }

    #[test]
    fn joined_text_and_pushed_lines_agree() {
        let pushed: Lines = ["a", "", "b\nc"].into_iter().collect();
        assert_eq!(strings(&pushed), ["a", "", "b", "c"]);
        assert_eq!(pushed.text(), "a\n\nb\nc\n");
        let joined = Lines::from_joined("a\n\nb\nc".into());
        assert_eq!(joined, pushed);
        let mut masked = pushed.clone();
        masked.mark_stderr();
        masked.replace_text("[redacted]\n\nb\nc\n".into());
        assert_eq!(strings(&masked), ["[redacted]", "", "b", "c"]);
        assert!(masked.all_stderr());
    }

    #[test]
    fn stderr_ranges_mark_their_lines_only() {
        let lines = Lines::from_joined("a\nb\nc\nd\ne".into()).with_stderr([(1, 3), (4, 9)]);
        let marked: Vec<bool> = (0..5).map(|i| in_ranges(lines.stderr(), i)).collect();
        assert_eq!(marked, [false, true, true, false, true]);
        assert!(!lines.all_stderr());
        assert!(Lines::default().stderr().is_empty());
    }
}
