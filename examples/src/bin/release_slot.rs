//! The manual-slot-release example on a one-slot worker.
//!
//!   release_slot worker [--heavy-secs 10] [--light-secs 5] [--no-release]
//!   release_slot push [--count 2]        # push `user:create` events
//!
//! With the release, the second run starts while the first prints its light part.

use std::time::Duration;

use adze_examples::release::{self, Shape, UserCreated};
use clap::Parser;

#[derive(Parser)]
enum Command {
    /// Serve the workflow on a worker with one slot until Ctrl-C.
    Worker {
        /// Seconds of heavy work, holding the slot.
        #[arg(long, default_value_t = 10.0)]
        heavy_secs: f64,
        /// Seconds of light work after the release.
        #[arg(long, default_value_t = 5.0)]
        light_secs: f64,
        /// Keep the slot to the end (to compare).
        #[arg(long)]
        no_release: bool,
    },
    /// Push `user:create` events.
    Push {
        /// How many.
        #[arg(long, default_value_t = 2)]
        count: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = adze_examples::connect().await?;
    match Command::parse() {
        Command::Worker {
            heavy_secs,
            light_secs,
            no_release,
        } => {
            let shape = Shape {
                heavy: Duration::try_from_secs_f64(heavy_secs)?,
                light: Duration::try_from_secs_f64(light_secs)?,
                release: !no_release,
            };
            let (workflow, _) = release::workflow(shape, release::printing_observer());
            let worker = client.worker("release-worker").slots(1).workflow(&workflow);
            adze_examples::serve_until_ctrl_c(worker, "user-workflow with one slot").await?;
        }
        Command::Push { count } => {
            for n in 0..count {
                let user = UserCreated {
                    user: format!("user-{n}"),
                };
                let id = client.push_event(release::EVENT, &user).await?;
                println!("pushed {} for {}: event {id}", release::EVENT, user.user);
            }
        }
    }
    Ok(())
}
