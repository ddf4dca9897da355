//! # adze-core
//!
//! Adze's domain model, free of I/O: everything here is data in, decisions out, so it
//! can be tested without a database, a network or a clock.
//!
//! ## Layout
//! - [`duration`]: the SDKs' duration strings (`"30s"`, `"5m"`, `"1h"`)
//! - [`workflow`]: workflow and task specs and their validation as a DAG
//! - [`event_key`]: matching event keys against triggers with `*` wildcards
//! - [`slots`]: a worker's slot pool: capacity and usage per slot type
//! - [`assignment`]: the assignment policy: which queued task goes to which worker
//! - [`retry`]: the retry policy: whether a failed attempt is retried, and its backoff
//! - [`state`]: task and run states and the transitions allowed between them
//! - [`error`]: the error kinds every boundary maps to a status code

#![forbid(unsafe_code)]

pub mod assignment;
pub mod duration;
pub mod error;
pub mod event_key;
pub mod retry;
pub mod slots;
pub mod state;
pub mod workflow;

pub use error::{Error, ErrorKind, Result};

/// Tenant ids are the `sub` of a token; every record belongs to exactly one tenant.
pub type TenantId = uuid::Uuid;
/// A worker session, created by `Register`.
pub type WorkerId = uuid::Uuid;
/// A workflow run (its external id on the wire).
pub type RunId = uuid::Uuid;
/// A task run (its `task_run_external_id` on the wire).
pub type TaskId = uuid::Uuid;

/// Milliseconds since the Unix epoch: how wall-clock instants are stored and sent.
pub type Millis = i64;
