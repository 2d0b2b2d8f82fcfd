//! What `opsdeck check` prints: one problem per line, each naming the file,
//! line, column and key, so an operator can jump straight to it.

use std::path::PathBuf;

/// Every problem found in one config file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

#[derive(Debug, Clone)]
pub struct ConfigError {
    /// 1-based; 0 when the problem is not at a place in the file.
    pub line: usize,
    pub column: usize,
    /// The key, e.g. `server.listen` or `app "rfc-app" → health.timeout`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    /// The TOML syntax error, which stops everything else.
    pub(super) fn from_syntax(text: &str, e: &toml_edit::TomlError) -> ConfigError {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        // toml_edit's message repeats the position and the source line; keep
        // only what it says is wrong.
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError {
            line,
            column,
            key: String::new(),
            message: format!("TOML syntax error: {message}"),
        }
    }

    /// `file:line:column: key: message`, the shape editors and CI jump to.
    pub fn display_in(&self, path: &std::path::Path) -> String {
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!(" {}:", self.key)
        };
        if self.line == 0 {
            format!("{}:{key} {}", path.display(), self.message)
        } else {
            format!(
                "{}:{}:{}:{key} {}",
                path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.errors {
            writeln!(f, "{}", e.display_in(&self.path))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
