//! The DAG example.
//!
//!   dag worker          # serve `dag` until Ctrl-C
//!   dag run [--n 21]    # trigger one run, wait, print both outputs as JSON
//!
//! `dag run` also drives a `dag` served by another SDK (the conformance suite's Python
//! worker serves one of the same shape).

use adze_examples::dag::{self, DagInput};
use clap::Parser;

#[derive(Parser)]
enum Command {
    /// Serve the workflow until Ctrl-C.
    Worker,
    /// Trigger a run and print its outputs.
    Run {
        /// The input number.
        #[arg(long, default_value_t = 21)]
        n: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = adze_examples::connect().await?;
    let dag = dag::workflow();
    match Command::parse() {
        Command::Worker => {
            let worker = client
                .worker("dag-worker")
                .workflow(&dag.workflow)
                .start()
                .await?;
            println!("worker {} serving dag", worker.id());
            tokio::signal::ctrl_c().await?;
            worker.shutdown().await;
        }
        Command::Run { n } => {
            let output = client.run(&dag.workflow, &DagInput { n }).await?;
            let parent = output.get(&dag.parent)?;
            let child = output.get(&dag.child)?;
            println!(
                "{}",
                serde_json::json!({ "parent": parent, "child": child })
            );
        }
    }
    Ok(())
}
