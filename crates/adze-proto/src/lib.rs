//! # The wire contract
//!
//! Hatchet's gRPC contract as Adze implements it, generated from `proto/` at build time.
//!
//! - [`v0`]: the package-less services `/Dispatcher`, `/EventsService`, `/WorkflowService`
//! - [`v1`]: `/v1.AdminService` and the messages shared with v0
//!
//! The `.proto` files are ours; their names and field numbers follow hatchet-sdk 1.43.1 so
//! that the bytes on the wire match.

#![allow(clippy::all, missing_docs)]

/// The v0 services, which Hatchet declares without a proto package.
pub mod v0 {
    // The generated v0 code names v1 messages as if both lived at the root.
    pub use super::v1;
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// The `v1` proto package.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/v1.rs"));
}
