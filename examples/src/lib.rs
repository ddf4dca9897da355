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

/// The README's Rust quickstart, compiled so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeQuickstart;

pub mod dag;
pub mod noop;
pub mod release;

use adze_sdk::{Client, WorkerBuilder};

/// What every example binary does first: log to stderr (filtered by `RUST_LOG`, default
/// `info`) and connect with the `HATCHET_CLIENT_*` variables.
pub async fn connect() -> adze_sdk::Result<Client> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Client::from_env().await
}

/// Starts the worker, says so on stdout (`worker <id> serving <what>`), and on Ctrl-C
/// (SIGINT) stops taking work and drains before returning.
pub async fn serve_until_ctrl_c(worker: WorkerBuilder, what: &str) -> anyhow::Result<()> {
    let worker = worker.start().await?;
    println!("worker {} serving {what}", worker.id());
    tokio::signal::ctrl_c().await?;
    worker.shutdown().await;
    Ok(())
}
