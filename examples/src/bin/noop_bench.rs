//! Runs per second of a no-op task.
//!
//!   noop_bench serve [--slots 100]              # a Rust worker serving `noop`
//!   noop_bench drive [--runs 1000]              # bulk-trigger `noop`, wait for all
//!
//! `drive` prints one line, `runs=N seconds=S runs_per_s=R`. Point it at a namespace
//! served by this binary's `serve` or by another SDK's `noop` worker to compare them.

use std::time::Instant;

use adze_examples::noop;
use adze_sdk::Empty;
use clap::Parser;

/// The engine takes at most this many triggers in one bulk call.
const BULK_LIMIT: usize = 1000;

#[derive(Parser)]
enum Command {
    /// Serve `noop` until Ctrl-C.
    Serve {
        /// The worker's slots.
        #[arg(long, default_value_t = 100)]
        slots: u32,
    },
    /// Trigger runs in bulk and wait for them all.
    Drive {
        /// How many runs.
        #[arg(long, default_value_t = 1000)]
        runs: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = adze_examples::connect().await?;
    let workflow = noop::workflow();
    match Command::parse() {
        Command::Serve { slots } => {
            let worker = client
                .worker("noop-worker")
                .slots(slots)
                .workflow(&workflow);
            adze_examples::serve_until_ctrl_c(worker, "noop").await?;
        }
        Command::Drive { runs } => {
            let inputs = vec![Empty {}; runs];
            let started = Instant::now();
            let mut refs = Vec::with_capacity(runs);
            for chunk in inputs.chunks(BULK_LIMIT) {
                refs.extend(client.bulk_trigger(&workflow, chunk).await?);
            }
            let results = client.wait_all(&refs).await?;
            let seconds = started.elapsed().as_secs_f64();
            let failed = results.iter().filter(|result| result.is_err()).count();
            anyhow::ensure!(failed == 0, "{failed} of {runs} runs failed");
            println!(
                "runs={runs} seconds={seconds:.3} runs_per_s={:.1}",
                runs as f64 / seconds
            );
        }
    }
    Ok(())
}
