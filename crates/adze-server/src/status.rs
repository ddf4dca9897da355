//! Error kinds to status codes, in one place, so a failure reads the same over gRPC and
//! HTTP.

use adze_core::{Error, ErrorKind};
use axum::http::StatusCode;
use tonic::Code;

/// `(gRPC code, HTTP status)` for each kind.
pub fn codes(kind: ErrorKind) -> (Code, StatusCode) {
    match kind {
        ErrorKind::InvalidArgument => (Code::InvalidArgument, StatusCode::BAD_REQUEST),
        ErrorKind::NotFound => (Code::NotFound, StatusCode::NOT_FOUND),
        ErrorKind::FailedPrecondition => (Code::FailedPrecondition, StatusCode::CONFLICT),
        ErrorKind::Unauthenticated => (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
        ErrorKind::ResourceExhausted => (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS),
        ErrorKind::Unavailable => (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        ErrorKind::Internal => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

pub fn to_status(error: Error) -> tonic::Status {
    tonic::Status::new(codes(error.kind).0, error.message)
}
