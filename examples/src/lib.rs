//! # Examples of adze-sdk
//!
//! Each module declares one workflow; the binaries in `src/bin/` serve or trigger it
//! against a running engine (`adze lite`), configured by the `HATCHET_CLIENT_*` variables
//! the engine prints.
//!
//! - [`release`]: Hatchet's manual-slot-release page — a `user:create` event, a heavy
//!   part holding the slot, `release_slot()`, a light part (`release_slot` binary)
//! - [`dag`]: two tasks, the child reading its parent's output (`dag` binary); the same
//!   shape as the conformance suite's Python `dag`, so either SDK can serve the other
//! - [`noop`]: a task that does nothing, to measure runs per second (`noop_bench` binary)
//!
//! Fan-out (a task spawning child runs) is not here: the engine has no child runs yet.

pub mod dag;
pub mod noop;
pub mod release;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
