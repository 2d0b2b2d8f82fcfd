//! The one error type. Each variant maps to an HTTP status in `web::error`;
//! the message is a sentence a user can act on. Internal details are logged,
//! never shown.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A body in a format the request does not take (not JSON).
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Caller-supplied text as opsdeck repeats it (in an error sentence, an
/// audit row): at most `max` characters, then how many more there were, so
/// a 60,000-character name is neither echoed back nor stored whole.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => {
            let more = text[cut..].chars().count();
            std::borrow::Cow::Owned(format!("{}… ({more} more characters)", &text[..cut]))
        }
    }
}

/// Longest name from a request that an error sentence repeats.
pub const MAX_ECHOED: usize = 100;

/// A name from a request (an app, a ref, a path), quoted for an error
/// sentence and clipped to [`MAX_ECHOED`] characters.
pub struct Quoted<'a>(pub &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", clip(self.0, MAX_ECHOED))
    }
}

impl Error {
    /// The sentence shown to the user (on a page, in an API answer, in a
    /// job's output): the message itself, or for an internal error a
    /// generic sentence, its details being only in opsdeck's log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Database(_) | Error::Internal(_) => {
                "opsdeck hit an internal error; the details are in its log".to_string()
            }
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_caller_text_is_clipped_and_counted() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééééé", 3), "ééé… (2 more characters)");
        assert_eq!(Quoted("nope").to_string(), "\"nope\"");
        let long = "x".repeat(10_000);
        let shown = Quoted(&long).to_string();
        assert!(shown.len() < 150, "{shown}");
        assert!(shown.ends_with("… (9900 more characters)\""), "{shown}");
    }
}
