//! Reads typed values out of a parsed TOML document key by key, remembering
//! where each key is written and collecting every problem instead of
//! stopping at the first, so `opsdeck check` can list them all at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use super::problems::{Label, Problems, Spot, element_names};

/// One table being read; `finish` reports the keys nobody asked for.
pub(super) struct Section<'d, 'p, 't> {
    pub p: &'p mut Problems<'t>,
    table: &'d dyn TableLike,
    pub label: Label,
    /// The TOML header of this table: `app.secret` for `[[app.secret]]`.
    header: String,
    known: Vec<&'d str>,
}

fn describe(item: &Item) -> String {
    match item {
        Item::None => "nothing".into(),
        Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "an array of tables".into(),
        Item::Value(v) => describe_value(v),
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {:?}", s.value()),
        Value::Integer(i) => format!("the integer {}", i.value()),
        Value::Float(f) => format!("the number {}", f.value()),
        Value::Boolean(b) => format!("{}", b.value()),
        Value::Datetime(d) => format!("the date-time {}", d.value()),
        Value::Array(_) => "an array".into(),
        Value::InlineTable(_) => "a table".into(),
    }
}

impl<'d, 'p, 't> Section<'d, 'p, 't> {
    pub fn root(p: &'p mut Problems<'t>, doc: &'d toml_edit::Table) -> Self {
        Section {
            p,
            table: doc,
            label: Label::default(),
            header: String::new(),
            known: Vec::new(),
        }
    }

    /// The TOML header of the sub-table `key`.
    fn header_of(&self, key: &str) -> String {
        if self.header.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.header)
        }
    }

    /// The section of the sub-table `key` of this one.
    fn sub<'s>(
        &'s mut self,
        key: &str,
        table: &'d dyn TableLike,
        label: Label,
    ) -> Section<'d, 's, 't> {
        let header = self.header_of(key);
        Section {
            p: &mut *self.p,
            table,
            label,
            header,
            known: Vec::new(),
        }
    }

    /// Looks up `key` (declaring it known) and remembers where it is.
    fn get(&mut self, key: &'d str) -> Option<(&'d Item, Label)> {
        self.known.push(key);
        let (k, item) = self.table.get_key_value(key)?;
        let label = self.label.key(key);
        let key_at = k.span().map(|s| s.start);
        let value_at = item.span().map(|s| s.start).or(key_at);
        if let (Some(key), Some(value)) = (key_at.or(value_at), value_at) {
            self.p.remember(&label, Spot { key, value });
        }
        Some((item, label))
    }

    /// Reads `key` with `convert`; a value it refuses is a type error.
    fn typed<T>(
        &mut self,
        key: &'d str,
        expected: &str,
        convert: impl FnOnce(&'d Item) -> Option<T>,
    ) -> Option<T> {
        let (item, label) = self.get(key)?;
        let value = convert(item);
        if value.is_none() {
            let found = describe(item);
            self.p
                .error(&label, format!("expected {expected}, found {found}"));
        }
        value
    }

    pub fn missing(&mut self, key: &str, expected: &str) {
        let label = self.label.key(key);
        self.p
            .error(&label, format!("missing required key `{key}` ({expected})"));
    }

    pub fn string(&mut self, key: &'d str) -> Option<String> {
        self.typed(key, "a string", |i| i.as_str().map(str::to_string))
    }

    pub fn string_or(&mut self, key: &'d str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_string())
    }

    /// A key without which the table means nothing; "" when missing.
    pub fn required_string(&mut self, key: &'d str, expected: &str) -> String {
        if !self.table.contains_key(key) {
            self.known.push(key);
            self.missing(key, expected);
        }
        self.string(key).unwrap_or_default()
    }

    pub fn path(&mut self, key: &'d str) -> Option<PathBuf> {
        self.string(key).map(PathBuf::from)
    }

    pub fn bool_or(&mut self, key: &'d str, default: bool) -> bool {
        self.typed(key, "true or false", Item::as_bool)
            .unwrap_or(default)
    }

    pub fn count(&mut self, key: &'d str) -> Option<usize> {
        self.typed(key, "a whole number ≥ 0", |i| {
            i.as_integer().and_then(|n| usize::try_from(n).ok())
        })
    }

    pub fn duration(&mut self, key: &'d str) -> Option<Duration> {
        let (text, label) = self
            .typed(key, "a duration like \"30s\"", |i| i.as_str())
            .map(|s| (s, self.label.key(key)))?;
        match super::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.p.error(&label, e);
                None
            }
        }
    }

    /// One of a fixed set of words, suggesting the nearest on a typo.
    pub fn choice<T: Copy>(&mut self, key: &'d str, options: &[(&str, T)]) -> Option<T> {
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        let expected = format!("one of {}", quoted_list(&words));
        let text = self.typed(key, &expected, |i| i.as_str())?;
        if let Some((_, value)) = options.iter().find(|(w, _)| *w == text) {
            return Some(*value);
        }
        let label = self.label.key(key);
        let hint = did_you_mean(text, &words);
        self.p
            .error(&label, format!("expected {expected}, found {text:?}{hint}"));
        None
    }

    pub fn role(&mut self, key: &'d str) -> Option<crate::actor::Role> {
        self.choice(key, &ROLES)
    }

    /// An array of strings; absent means empty. Each element's place is
    /// remembered for [`Problems::error_in`].
    pub fn strings(&mut self, key: &'d str) -> Vec<String> {
        let Some((item, label)) = self.get(key) else {
            return Vec::new();
        };
        let Some(array) = item.as_array() else {
            let found = describe(item);
            self.p.error(
                &label,
                format!("expected an array of strings, found {found}"),
            );
            return Vec::new();
        };
        let mut out = Vec::with_capacity(array.len());
        for (index, value) in array.iter().enumerate() {
            let at = value.span().map(|s| s.start);
            if let Some(at) = at {
                self.p.remember_element(&label, index, at);
            }
            match value.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let found = describe_value(value);
                    let message = format!(
                        "expected an array of strings; item {} is {found}",
                        index + 1
                    );
                    self.p.error_at(at, &label, message);
                }
            }
        }
        out
    }

    pub fn opt_strings(&mut self, key: &'d str) -> Option<Vec<String>> {
        self.table.contains_key(key).then(|| self.strings(key))
    }

    /// A table of strings (`env = { KEY = "value" }`).
    pub fn string_map(&mut self, key: &'d str) -> BTreeMap<String, String> {
        self.typed(key, "a table of strings", |i| {
            i.as_table_like()?
                .iter()
                .map(|(k, v)| v.as_str().map(|v| (k.to_string(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The sub-table `key` (`[x.key]` or `key = { … }`), read by `read`.
    pub fn table<T>(
        &mut self,
        key: &'d str,
        read: impl FnOnce(&mut Section<'d, '_, 't>) -> T,
    ) -> Option<T> {
        let (item, label) = self.get(key)?;
        let Some(table) = item.as_table_like() else {
            let found = describe(item);
            self.p
                .error(&label, format!("expected a table, found {found}"));
            return None;
        };
        let mut section = self.sub(key, table, label);
        let value = read(&mut section);
        section.finish();
        Some(value)
    }

    /// `key` written as one table (`[x.key]`, `key = { … }`) or as an array
    /// of them (`[[x.key]]`, `key = [{ … }]`), each read by `read`.
    pub fn table_or_tables<T>(
        &mut self,
        key: &'d str,
        mut read: impl FnMut(&mut Section<'d, '_, 't>) -> T,
    ) -> Vec<T> {
        let one = self
            .table
            .get(key)
            .is_some_and(|item| item.as_table_like().is_some());
        if one {
            self.table(key, read).into_iter().collect()
        } else {
            self.tables(key, &mut read)
        }
    }

    /// Each entry of the table `key` (`[hosts.<name>]`), read by `read`.
    pub fn named_tables<T>(
        &mut self,
        key: &'d str,
        mut read: impl FnMut(&mut Section<'d, '_, 't>) -> T,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let Some(outer) = self.typed(key, "a table", Item::as_table_like) else {
            return out;
        };
        let outer_label = self.label.key(key);
        let mut names = self.sub(key, outer, outer_label);
        for (name, _) in outer.iter() {
            if let Some(v) = names.table(name, &mut read) {
                out.insert(name.to_string(), v);
            }
        }
        out
    }

    /// Each table of the array `key` (`[[x.key]]` or `key = [{ … }]`), read
    /// by `read`; elements are labelled by their `name`.
    pub fn tables<T>(
        &mut self,
        key: &'d str,
        mut read: impl FnMut(&mut Section<'d, '_, 't>) -> T,
    ) -> Vec<T> {
        // The likely slip is `[app]` for `[[app]]`; say how to write it.
        let header = self.header_of(key);
        let expected = format!("an array of tables (`[[{header}]]`, not `[{header}]`)");
        let Some(elements) = self.typed(key, &expected, |item| match item {
            Item::ArrayOfTables(a) => Some(
                a.iter()
                    .map(|t| (t as &dyn TableLike, t.span()))
                    .collect::<Vec<_>>(),
            ),
            Item::Value(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_inline_table().map(|t| (t as &dyn TableLike, v.span())))
                .collect(),
            _ => None,
        }) else {
            return Vec::new();
        };
        let array = self.label.key(key);
        let names: Vec<Option<&str>> = elements
            .iter()
            .map(|(t, _)| t.get("name").and_then(Item::as_str))
            .collect();
        let names = element_names(&names);
        let mut out = Vec::with_capacity(elements.len());
        for (index, (table, span)) in elements.into_iter().enumerate() {
            let label = array.element(index, names[index]);
            if let Some(at) = span.map(|s| s.start) {
                self.p.remember(&label, Spot { key: at, value: at });
            }
            let mut section = self.sub(key, table, label);
            out.push(read(&mut section));
            section.finish();
        }
        out
    }

    /// Reports every key of this table that no reader asked for.
    pub fn finish(self) {
        for (key, item) in self.table.iter() {
            if self.known.contains(&key) {
                continue;
            }
            let label = self.label.key(key);
            let at = self
                .table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| item.span())
                .map(|s| s.start);
            let hint = did_you_mean(key, &self.known);
            let where_ = if self.label.is_root() {
                String::new()
            } else {
                format!(" in `{}`", self.label)
            };
            self.p
                .error_at(at, &label, format!("unknown key `{key}`{where_}{hint}"));
        }
    }
}

const ROLES: [(&str, crate::actor::Role); 4] = [
    ("viewer", crate::actor::Role::Viewer),
    ("operator", crate::actor::Role::Operator),
    ("admin", crate::actor::Role::Admin),
    ("owner", crate::actor::Role::Owner),
];

pub(super) fn quoted_list(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// `; did you mean `listen`?` when a known word is a likely typo of `word`
/// (a few letters off, or the start of it).
pub(super) fn did_you_mean(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| {
            let prefix = word.len() >= 3 && (k.starts_with(word) || word.starts_with(k));
            let distance = if prefix {
                1
            } else {
                strsim::damerau_levenshtein(word, k)
            };
            (distance, *k)
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}
