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
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
