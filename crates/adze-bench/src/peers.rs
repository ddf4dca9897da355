//! Peers in the same run: each `bench/peers/<peer>/run.sh` installs its system into a
//! scratch folder, runs the same no-op job with the same count and latency stamp, and
//! prints a [`Summary`] as its last line of JSON on stdout.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use clap::Args;

use crate::report::Summary;

/// The peers there are scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// Graphile Worker (npm) on the local PostgreSQL.
    Graphile,
    /// Celery (PyPI) with the Redis broker.
    Celery,
}

impl Peer {
    fn folder(self) -> &'static str {
        match self {
            Peer::Graphile => "graphile",
            Peer::Celery => "celery",
        }
    }
}

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Everything queued first, then drained.
    Drain,
    /// Runs produced at --rate while workers run them.
    Steady,
}

#[derive(Args, Debug, Clone)]
pub struct CompareOptions {
    #[arg(long, value_enum, default_value = "drain")]
    pub mode: Mode,
    /// Peers to run next to Adze.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "graphile,celery"
    )]
    pub peers: Vec<Peer>,
    /// Where the peer scripts are.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/peers"))]
    pub peers_dir: PathBuf,
}

/// Runs one peer's script with the shared parameters.
pub async fn run(
    peers_dir: &Path,
    peer: Peer,
    mode: Mode,
    count: u64,
    rate: Option<f64>,
) -> anyhow::Result<Summary> {
    let script = peers_dir.join(peer.folder()).join("run.sh");
    if !script.exists() {
        bail!("no peer script at {} (see --peers-dir)", script.display());
    }
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(&script)
        .args([
            "--mode",
            match mode {
                Mode::Drain => "drain",
                Mode::Steady => "steady",
            },
        ])
        .args(["--count", &count.to_string()]);
    if let Some(rate) = rate {
        command.args(["--rate", &rate.to_string()]);
    }
    eprintln!("[peer {}] {}", peer.folder(), script.display());
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .with_context(|| format!("{} printed no JSON summary", script.display()))?;
    serde_json::from_str(last)
        .with_context(|| format!("{} printed a malformed summary: {last}", script.display()))
}
