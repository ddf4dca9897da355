//! # adze-sdk: workers and clients for Adze in Rust
//!
//! Speaks Hatchet's wire protocol, so it works against `adze lite` and, by the same
//! contract, Hatchet. Tasks are typed `async fn(Input, Context) -> Result<Output, E>`
//! with serde types, and the SDK is honest about slots:
//! [`Context::release_slot`] frees the engine's slot *and* the worker's local permit.
//!
//! ## Layout
//!
//! - [`config`]: settings from `HATCHET_CLIENT_*` variables or a builder; addresses from
//!   the token's claims
//! - `client`: [`Client`] — trigger runs, wait for typed results, push events, run details
//! - `workflow`, `task`: [`Workflow`] (a DAG of [`Task`]s with event triggers),
//!   [`TaskHandle`] (a task's name and output type)
//! - `worker`: [`Worker`] — slots per type, heartbeats, ListenV2 with reconnect, drain
//! - `context`: [`Context`] — what a running task can see and ask for
//! - `error`: [`Error`], the one error type
//!
//! ## Example
//!
//! ```no_run
//! use adze_sdk::{Client, Context, Task, TaskError, Workflow};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Upload { file: String }
//!
//! async fn process(upload: Upload, ctx: Context) -> Result<String, TaskError> {
//!     // ... the heavy part, holding the slot ...
//!     ctx.release_slot().await?;
//!     // ... the light tail; the next task may start on this worker now ...
//!     Ok(format!("processed {}", upload.file))
//! }
//!
//! # async fn run() -> adze_sdk::Result<()> {
//! let client = Client::from_env().await?;
//! let mut workflow = Workflow::<Upload>::new("process-upload").on_event("upload:new");
//! let task = workflow.add(Task::new("process", process));
//! let worker = client.worker("uploads").slots(1).workflow(&workflow).start().await?;
//!
//! let output = client.run(&workflow, &Upload { file: "a.csv".into() }).await?;
//! assert_eq!(output.get(&task)?, "processed a.csv");
//! worker.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Connections are plaintext (`HATCHET_CLIENT_TLS_STRATEGY=none`, as `adze lite` serves),
//! TLS (the default, against the system's roots or `HATCHET_CLIENT_TLS_ROOT_CA_FILE`) or
//! mutual TLS (`mtls` with `HATCHET_CLIENT_TLS_CERT_FILE` / `_KEY_FILE`).
//!
//! Not offered yet, because the engine refuses or lacks them: crons and schedules,
//! concurrency limits, rate limits, worker labels, conditions, on-failure tasks, child
//! runs (so no fan-out).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod client;
pub mod config;
mod connection;
mod context;
mod error;
mod task;
mod worker;
mod workflow;

pub use client::{Client, RunDetails, RunOutput, RunRef, RunStatus, TaskDetails, TriggerOptions};
pub use config::{Config, ConfigBuilder, TlsStrategy};
pub use context::Context;
pub use error::{Error, Result};
pub use task::{Task, TaskError, TaskHandle};
pub use worker::{Worker, WorkerBuilder};
pub use workflow::Workflow;

/// An input or output with no fields, serialised as `{}` (the engine wants an object).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Empty {}
