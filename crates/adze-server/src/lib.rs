//! # adze-server
//!
//! The adapters between the outside world and the engine: Hatchet's gRPC contract, the
//! REST calls its SDKs make, and token auth. Proto and HTTP types stop here; the engine
//! speaks core types only.
//!
//! ## Layout
//! - [`auth`]: JWT tokens signed by the engine, checked on every call
//! - [`status`]: the one table from error kinds to gRPC codes and HTTP statuses
//! - [`convert`]: wire messages to core types and back
//! - [`grpc`]: the `Dispatcher`, `EventsService`, `WorkflowService` and `v1.AdminService`
//! - [`rest`]: health checks and the REST calls of the SDKs
//! - [`serve`]: binding, wiring and shutdown

#![forbid(unsafe_code)]

pub mod auth;
pub mod convert;
pub mod grpc;
pub mod rest;
pub mod serve;
pub mod status;

pub use serve::{Listeners, serve};

/// The version `GetVersion` reports: modern enough for hatchet-sdk 1.x (≥ v0.78.23), and
/// below v0.80.0, from which the SDK expects the `DurableTask` stream Adze lacks.
pub const HATCHET_COMPATIBLE_VERSION: &str = "v0.79.0";
