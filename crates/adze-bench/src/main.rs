//! # adze-bench
//!
//! A load generator for Adze that speaks Hatchet's wire protocol as both producer and
//! workers, on the tonic stubs of `adze-proto`. It starts `adze lite` itself (free ports,
//! a temporary data directory) or loads any engine given by URL and token.
//!
//! ## Layout
//! - [`scenario`]: the scenarios (steady, dag, fanout, backlog, restart, release)
//! - [`producer`]: triggers or events at a rate or as fast as possible, ack latency
//! - [`worker`]: workers that register, listen, report, release slots
//! - [`workload`]: the workflow's DAG and each run's stamped input
//! - [`ledger`]: every execution counted by id: the correctness check, latency samples
//! - [`engine`]: the `adze lite` child process and its `/proc` figures
//! - [`connection`]: the target and its authenticated clients
//! - [`peers`]: Graphile Worker and Celery run by `bench/peers/` scripts
//! - [`report`], [`stats`], [`plot`]: JSON, Markdown, percentiles, PNGs
//!
//! Progress goes to stderr; results to stdout.

#![forbid(unsafe_code)]

mod connection;
mod engine;
mod ledger;
mod peers;
mod plot;
mod producer;
mod report;
mod scenario;
mod stats;
mod worker;
mod workload;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::{Report, comparison_markdown};
use crate::scenario::{Options, ReleaseOptions, RestartOptions};

/// Load scenarios for Adze, and peers side by side.
#[derive(Parser)]
#[command(name = "adze-bench", version, about)]
struct Cli {
    /// What goes to stdout.
    #[arg(long, value_enum, global = true, default_value = "both")]
    format: Format,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Markdown,
    /// The JSON document, then the Markdown tables.
    Both,
}

#[derive(Subcommand)]
enum Scenario {
    /// No-op tasks triggered and run as they arrive (default: as fast as possible).
    Steady(Options),
    /// A two-step DAG per run (parent → child).
    Dag(Options),
    /// A fan-out of two per run, modelled as a DAG: one parent, two children.
    Fanout(Options),
    /// Runs queued before any worker connects (default 1,000,000), then drained.
    Backlog(Options),
    /// A backlog, the engine killed (or terminated) and restarted, then drained.
    Restart {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        restart: RestartOptions,
    },
    /// One-slot workers whose tasks hold, release and continue: release → next start.
    Release {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        release: ReleaseOptions,
    },
    /// Every scenario at a few hundred runs: seconds, asserting only correctness.
    Smoke(Options),
    /// Adze and its peers (Graphile Worker, Celery) on the same job, side by side.
    Compare {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        compare: peers::CompareOptions,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (reports, extra) = runtime.block_on(run(cli.scenario))?;
    let failed = reports.iter().any(|report| !report.correctness.ok);
    if matches!(cli.format, Format::Json | Format::Both) {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if matches!(cli.format, Format::Markdown | Format::Both) {
        for report in &reports {
            println!("\n{}", report.markdown());
        }
        if let Some(extra) = extra {
            println!("\n{extra}");
        }
    }
    if failed {
        anyhow::bail!("the correctness check failed: some runs did not execute exactly once");
    }
    Ok(())
}

/// Runs a scenario; returns its reports and any extra Markdown (the comparison).
async fn run(scenario: Scenario) -> anyhow::Result<(Vec<Report>, Option<String>)> {
    let one = |report: Report| Ok((vec![report], None));
    match scenario {
        Scenario::Steady(options) => one(scenario::steady("steady", &options).await?),
        Scenario::Dag(options) => one(scenario::steady("dag", &options).await?),
        Scenario::Fanout(options) => one(scenario::steady("fanout", &options).await?),
        Scenario::Backlog(options) => one(scenario::backlog(&options).await?),
        Scenario::Restart { options, restart } => one(scenario::restart(&options, &restart).await?),
        Scenario::Release { options, release } => one(scenario::release(&options, &release).await?),
        Scenario::Smoke(options) => Ok((smoke(options).await?, None)),
        Scenario::Compare { options, compare } => compare_with_peers(options, compare).await,
    }
}

/// Small enough for the test command: a few hundred runs per scenario.
async fn smoke(options: Options) -> anyhow::Result<Vec<Report>> {
    let sized = |count: u64| Options {
        count: Some(options.count.unwrap_or(count)),
        workers: Some(options.workers.unwrap_or(2)),
        slots: Some(options.slots.unwrap_or(20)),
        timeout: options.timeout.min(120.0),
        ..options.clone()
    };
    let mut reports = vec![
        scenario::steady("steady", &sized(300)).await?,
        scenario::steady("dag", &sized(100)).await?,
        scenario::steady("fanout", &sized(100)).await?,
        scenario::backlog(&sized(1_000)).await?,
    ];
    let release_options = Options {
        slots: Some(1),
        ..sized(40)
    };
    let release = ReleaseOptions {
        hold_ms: 5,
        tail_ms: 5,
    };
    reports.push(scenario::release(&release_options, &release).await?);
    if options.target.is_none() {
        let restart = RestartOptions {
            signal: engine::StopSignal::Kill,
        };
        reports.push(scenario::restart(&sized(500), &restart).await?);
    }
    Ok(reports)
}

async fn compare_with_peers(
    options: Options,
    compare: peers::CompareOptions,
) -> anyhow::Result<(Vec<Report>, Option<String>)> {
    let count = options.count.unwrap_or(20_000);
    let sized = Options {
        count: Some(count),
        ..options.clone()
    };
    let (adze, title) = match compare.mode {
        peers::Mode::Drain => (
            scenario::backlog(&sized).await?,
            format!("drain: {count} no-op tasks queued, then run"),
        ),
        peers::Mode::Steady => (
            scenario::steady("steady", &sized).await?,
            match options.rate {
                Some(rate) => format!("steady: {count} no-op tasks at {rate}/s"),
                None => format!("steady: {count} no-op tasks, as fast as possible"),
            },
        ),
    };
    let mut summaries = Vec::new();
    for peer in &compare.peers {
        summaries
            .push(peers::run(&compare.peers_dir, *peer, compare.mode, count, options.rate).await?);
    }
    let table = comparison_markdown(&title, &adze.summary("Adze (lite)"), &summaries);
    Ok((vec![adze], Some(table)))
}
