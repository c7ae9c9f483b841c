//! The one error type of the use cases, classified the way the HTTP layer answers it.

use std::fmt;

/// A failure of a use case. Client mistakes carry a message meant for the client;
/// internal failures carry their source for the logs only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(msg: impl fmt::Display) -> Self {
        Self::BadRequest(msg.to_string())
    }

    pub fn not_found(msg: impl fmt::Display) -> Self {
        Self::NotFound(msg.to_string())
    }

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    /// Whether trying the same operation again may succeed (store or queue hiccups do,
    /// client mistakes never do).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Internal(_))
    }
}

impl From<crate::duration::DurationError> for Error {
    fn from(err: crate::duration::DurationError) -> Self {
        Self::bad_request(err)
    }
}

impl From<crate::retry::ExprError> for Error {
    fn from(err: crate::retry::ExprError) -> Self {
        Self::bad_request(err)
    }
}
