//! Sorting PostgreSQL failures into what a caller can act on: the database is not
//! reachable (retry later), every pooled connection is busy (back off), or the statement
//! itself failed.

use std::error::Error as _;

use deadpool_postgres::{Pool, PoolError, TimeoutType};
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

/// A server restart ends every connection, but a pooled one only shows it is closed once
/// its driver has read the end: after one call lost its connection, the idle ones are
/// dropped so the next calls connect afresh instead of each failing on a dead one.
pub(super) fn forget_idle_after_loss(pool: &Pool, error: &StoreError) {
    if matches!(error, StoreError::Unavailable(_)) {
        let forgotten = pool.retain(|_, _| false).removed.len();
        tracing::warn!(
            forgotten,
            "database connection lost, idle connections dropped"
        );
    }
}
