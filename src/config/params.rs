//! Parameter values (of actions, command sweeps and command deploys):
//! what a value typed or picked at click time must be before it may reach
//! a program, as one argv word, through its `{name}` placeholder. The
//! config's defaults are checked by the same rule when it loads; requests
//! when they are made and again when their job starts.

use super::{Param, ParamKind};

/// Longest value accepted: a tag, a build id, a branch — never a document.
pub const MAX_VALUE: usize = 256;

impl Param {
    /// What the form calls it.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// `pattern`, anchored at both ends (`^(?:…)$`).
    pub fn pattern(&self) -> Result<Option<regex_lite::Regex>, String> {
        self.pattern
            .as_deref()
            .map(|p| {
                regex_lite::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("the pattern {p:?} is not a regular expression: {e}"))
            })
            .transpose()
    }

    /// Refuses `value` unless it is fit to be one argv word: no line
    /// breaks, NUL or other control characters; no leading `-` (it would
    /// read as an option) unless the pattern allows it; matching the
    /// pattern; one of `choices` for a `choice`, a `release` or a
    /// `backup`. The sentence says why.
    pub fn check(&self, value: &str, choices: &[String]) -> Result<(), String> {
        let shown = crate::error::Quoted(value);
        if value.chars().count() > MAX_VALUE {
            return Err(format!(
                "{} is longer than {MAX_VALUE} characters",
                self.label()
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!(
                "{shown} is refused for {}: it holds a line break, NUL or another control character",
                self.label()
            ));
        }
        let pattern = self.pattern()?;
        if let Some(pattern) = &pattern {
            if !pattern.is_match(value) {
                return Err(format!(
                    "{shown} is refused for {}: it does not match {:?}",
                    self.label(),
                    self.pattern.as_deref().unwrap_or_default()
                ));
            }
        } else if value.starts_with('-') {
            return Err(format!(
                "{shown} is refused for {}: it starts with \"-\", which a program would read as an option",
                self.label()
            ));
        }
        let listed = matches!(
            self.kind,
            ParamKind::Choice | ParamKind::Release | ParamKind::Backup
        );
        if listed && !choices.iter().any(|c| c == value) {
            return Err(format!(
                "{shown} is refused for {}: it is not one of the choices",
                self.label()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(pattern: Option<&str>, kind: ParamKind) -> Param {
        Param {
            name: "tag".into(),
            label: None,
            kind,
            pattern: pattern.map(Into::into),
            choices: Vec::new(),
            choices_from: None,
            sweep: None,
            default: None,
            required: true,
        }
    }

    #[test]
    fn values_fit_for_one_argv_word() {
        let tag = param(Some("[a-z0-9.]+"), ParamKind::Text);
        assert!(tag.check("v1.2", &[]).is_ok());
        for bad in ["x; rm -rf /", "--help", "v1\nv2", "v1\0", "v1 "] {
            assert!(tag.check(bad, &[]).is_err(), "{bad:?}");
        }
        let free = param(None, ParamKind::Text);
        assert!(free.check("two words; fine", &[]).is_ok());
        assert!(free.check("-rf", &[]).unwrap_err().contains("option"));
        assert!(free.check("a\rb", &[]).is_err());
        let dash = param(Some("-[0-9]+"), ParamKind::Text);
        assert!(dash.check("-5", &[]).is_ok());
        let choice = param(None, ParamKind::Choice);
        let choices = ["a".to_owned(), "b".to_owned()];
        assert!(choice.check("b", &choices).is_ok());
        assert!(
            choice
                .check("c", &choices)
                .unwrap_err()
                .contains("not one of")
        );
    }
}
