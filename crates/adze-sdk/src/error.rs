//! The one error type of the SDK: every fallible call returns [`Error`].

use tonic::Code;

/// What went wrong, by kind, with a message naming the value or field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration (environment or builder) is missing or malformed.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The engine could not be reached, or the connection broke.
    #[error("cannot reach the engine: {0}")]
    Connection(String),
    /// The engine refused the token.
    #[error("not authenticated: {0}")]
    Auth(String),
    /// The engine (or the SDK, before sending) refused a value.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A run, workflow or worker the call named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A task of the awaited run failed; `message` is the error the task reported.
    #[error("run {run_id}: task {task} failed: {message}")]
    TaskFailed {
        /// The run the task belongs to.
        run_id: String,
        /// The task's name within its workflow.
        task: String,
        /// The error the task reported (or the engine's, e.g. a timeout).
        message: String,
    },
    /// A value could not be turned into JSON or back into the expected type.
    #[error("{what}: {source}")]
    Json {
        /// What was being encoded or decoded.
        what: String,
        /// The underlying serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Any other answer of the engine, with its gRPC code.
    #[error("engine answered {code:?}: {message}")]
    Rpc {
        /// The gRPC status code.
        code: Code,
        /// The engine's message.
        message: String,
    },
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }

    /// Whether retrying the same call later may succeed (the engine was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Connection(_))
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => Error::Auth(message),
            Code::InvalidArgument => Error::InvalidArgument(message),
            Code::NotFound => Error::NotFound(message),
            _ if is_transient(&status) => Error::Connection(message),
            code => Error::Rpc { code, message },
        }
    }
}

/// Whether a status says the connection failed rather than the engine refusing: tonic
/// reports a broken transport as `Unknown` ("transport error"), a call whose connection
/// died under it as `Cancelled` ("operation was canceled"), a down server as
/// `Unavailable`.
pub(crate) fn is_transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds_keeping_the_message() {
        let error = Error::from(tonic::Status::invalid_argument("tasks[0].timeout: bad"));
        assert!(matches!(&error, Error::InvalidArgument(m) if m == "tasks[0].timeout: bad"));
        assert!(matches!(
            Error::from(tonic::Status::unauthenticated("")),
            Error::Auth(_)
        ));
        assert!(Error::from(tonic::Status::unavailable("down")).is_transient());
        assert!(Error::from(tonic::Status::unknown("transport error")).is_transient());
        assert!(matches!(
            Error::from(tonic::Status::internal("boom")),
            Error::Rpc {
                code: Code::Internal,
                ..
            }
        ));
    }
}
