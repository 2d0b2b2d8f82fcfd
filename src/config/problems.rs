//! Where every key is written and what is wrong with it: the labels keys
//! are shown by, and the problems collected while reading and validating.

use std::collections::{HashMap, HashSet};

use super::errors::{ConfigError, line_col};

/// The name of a key as the operator reads it: `server.listen`,
/// `app "rfc-app" → health.timeout`, `app #2 → build #1 → run`.
#[derive(Debug, Clone, Default)]
pub(super) struct Label {
    text: String,
    /// Whether the last segment is an array element (joined with ` → `).
    element: bool,
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Label {
    pub fn is_root(&self) -> bool {
        self.text.is_empty()
    }

    pub fn key(&self, key: &str) -> Label {
        let text = match (self.text.is_empty(), self.element) {
            (true, _) => key.to_string(),
            (false, true) => format!("{} → {key}", self.text),
            (false, false) => format!("{}.{key}", self.text),
        };
        Label {
            text,
            element: false,
        }
    }

    /// Element `index` (0-based) of the array this label names, shown by its
    /// `name` when it has a usable one.
    pub fn element(&self, index: usize, name: Option<&str>) -> Label {
        let text = match name {
            Some(name) => format!("{} {name:?}", self.text),
            None => format!("{} #{}", self.text, index + 1),
        };
        Label {
            text,
            element: true,
        }
    }
}

/// The names elements are labelled by: each non-empty `name` used once
/// among its siblings; `None` (labelled by position) otherwise.
pub(super) fn element_names<'a>(names: &[Option<&'a str>]) -> Vec<Option<&'a str>> {
    names
        .iter()
        .map(|name| {
            name.filter(|n| !n.is_empty() && names.iter().filter(|m| **m == Some(*n)).count() == 1)
        })
        .collect()
}

/// The internal key of an array element's spot (never shown).
fn element_key(label: &Label, index: usize) -> String {
    format!("{}\u{0}{index}", label.text)
}

/// Where a key and its value are written (byte offsets).
#[derive(Debug, Clone, Copy)]
pub(super) struct Spot {
    pub key: usize,
    pub value: usize,
}

/// Every problem found so far, and where every key read is written.
pub(super) struct Problems<'t> {
    text: &'t str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    spots: HashMap<String, Spot>,
    /// Keys that already have an error: one error per key is enough.
    failed: HashSet<String>,
}

impl<'t> Problems<'t> {
    pub fn new(text: &'t str) -> Problems<'t> {
        Problems {
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
            spots: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    fn problem(&self, offset: Option<usize>, label: &Label, message: String) -> ConfigError {
        let (line, column) = offset.map_or((0, 0), |o| line_col(self.text, o));
        ConfigError {
            line,
            column,
            key: label.text.clone(),
            message,
        }
    }

    pub(super) fn error_at(&mut self, offset: Option<usize>, label: &Label, message: String) {
        if self.failed.insert(label.text.clone()) {
            let e = self.problem(offset, label, message);
            self.errors.push(e);
        }
    }

    /// Where `label`'s value is written, or else the nearest enclosing key
    /// or table that is (a missing key is reported at its table).
    fn locate(&self, label: &Label) -> Option<usize> {
        let mut text = label.text.as_str();
        loop {
            if let Some(spot) = self.spots.get(text) {
                return Some(if text == label.text {
                    spot.value
                } else {
                    spot.key
                });
            }
            let cut = text.rfind(" → ").or_else(|| text.rfind('.'))?;
            text = &text[..cut];
        }
    }

    /// Whether the config writes `label` at all (rather than defaulting it).
    pub fn is_written(&self, label: &Label) -> bool {
        self.spots.contains_key(&label.text)
    }

    /// Remembers where `label` is written.
    pub fn remember(&mut self, label: &Label, spot: Spot) {
        self.spots.insert(label.text.clone(), spot);
    }

    /// Remembers where element `index` of the array `label` is written.
    pub fn remember_element(&mut self, label: &Label, index: usize, at: usize) {
        let spot = Spot { key: at, value: at };
        self.spots.insert(element_key(label, index), spot);
    }

    /// An error about the value of `label`.
    pub fn error(&mut self, label: &Label, message: impl Into<String>) {
        let offset = self.locate(label);
        self.error_at(offset, label, message.into());
    }

    /// An error about element `index` of the array `label`, at that element.
    pub fn error_in(&mut self, label: &Label, index: usize, message: impl Into<String>) {
        let key = element_key(label, index);
        let offset = self
            .spots
            .get(&key)
            .map(|s| s.value)
            .or_else(|| self.locate(label));
        if self.failed.insert(key) {
            let e = self.problem(offset, label, message.into());
            self.errors.push(e);
        }
    }

    /// A problem that does not stop opsdeck from starting.
    pub fn warn(&mut self, label: &Label, message: impl Into<String>) {
        let w = self.problem(self.locate(label), label, message.into());
        self.warnings.push(w);
    }

    pub fn has_error(&self, label: &Label) -> bool {
        self.failed.contains(&label.text)
    }

    pub fn into_parts(self) -> (Vec<ConfigError>, Vec<ConfigError>) {
        let mut errors = self.errors;
        errors.sort_by_key(|e| (e.line, e.column));
        (errors, self.warnings)
    }
}
