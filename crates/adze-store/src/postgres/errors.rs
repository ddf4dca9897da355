//! Sorting PostgreSQL failures into what a caller can act on: the database is not
//! reachable (retry later), every pooled connection is busy (back off), or the statement
//! itself failed.

use std::error::Error as _;

use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::SqlState;

use crate::{StoreError, postgres_message};

pub(super) fn from_postgres(error: tokio_postgres::Error) -> StoreError {
    if lost_connection(&error) {
        StoreError::Unavailable(postgres_message(&error))
    } else {
        StoreError::Postgres(error)
    }
}

pub(super) fn from_pool(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(TimeoutType::Wait) => {
            StoreError::Exhausted("every pooled connection stayed busy".into())
        }
        PoolError::Timeout(TimeoutType::Create | TimeoutType::Recycle) => {
            StoreError::Unavailable("no answer from the database within the connect timeout".into())
        }
        PoolError::Backend(error) => from_postgres(error),
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Whether the failure is about the connection rather than the statement: the server
/// went away, is shutting down or starting up, or the socket broke.
fn lost_connection(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code);
    }
    error
        .source()
        .is_some_and(|source| source.is::<std::io::Error>())
}
