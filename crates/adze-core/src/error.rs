//! The error kinds of Adze. Each boundary maps a kind to its own status code (gRPC code,
//! HTTP status) in one table, so the same failure reads the same everywhere.

/// What went wrong, in the terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The request itself is wrong; retrying it unchanged will fail again.
    InvalidArgument,
    /// The named thing does not exist (for this tenant).
    NotFound,
    /// The request conflicts with the current state (e.g. releasing a finished task).
    FailedPrecondition,
    /// The caller could not be identified.
    Unauthenticated,
    /// A limit was reached; retry later.
    ResourceExhausted,
    /// The engine cannot serve the request right now; retry later.
    Unavailable,
    /// A bug or a storage failure.
    Internal,
}

/// An error with a kind and a message naming the field or thing and the problem.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

/// The result type of the core and the crates above it.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }

    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceExhausted, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}
