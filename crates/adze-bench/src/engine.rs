//! The engine under test when the bench starts it: an `adze lite` child process on free
//! ports and a temporary data directory, and what `/proc` says about its CPU and memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::connection::Target;

/// How long a started engine may take to print its connection details.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// An `adze lite` the bench started, with the directory it keeps its data in.
pub struct LiteEngine {
    binary: PathBuf,
    data_dir: tempfile::TempDir,
    child: Child,
    /// The gRPC and HTTP addresses of the first start, reused by restarts so that the
    /// token (which names them) stays valid.
    addresses: Option<(String, String)>,
    pub target: Target,
}

/// CPU time and memory of a process, from `/proc/<pid>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    /// User plus system CPU time.
    pub cpu: Duration,
    pub rss_bytes: u64,
    /// The high-water mark of the resident set since the process started.
    pub peak_rss_bytes: u64,
}

/// How the engine is stopped in the restart scenario.
#[derive(Debug, Clone, Copy, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopSignal {
    /// SIGKILL: a crash.
    Kill,
    /// SIGTERM: a clean shutdown.
    Term,
}

impl LiteEngine {
    pub async fn start(binary: &Path) -> anyhow::Result<LiteEngine> {
        let data_dir = tempfile::Builder::new()
            .prefix("adze-bench-")
            .tempdir()
            .context("cannot create a temporary data directory")?;
        let (child, target, addresses) = spawn(binary, data_dir.path(), None).await?;
        Ok(LiteEngine {
            binary: binary.to_path_buf(),
            data_dir,
            child,
            addresses: Some(addresses),
            target,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn sample(&self) -> anyhow::Result<ProcessSample> {
        let pid = self.pid().context("the engine has exited")?;
        sample_process(pid)
    }

    /// Stops the engine with `signal` and waits for it to exit.
    pub async fn stop(&mut self, signal: StopSignal) -> anyhow::Result<()> {
        let pid = self.pid().context("the engine has already exited")?;
        let name = match signal {
            StopSignal::Kill => "-KILL",
            StopSignal::Term => "-TERM",
        };
        let status = Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            bail!("kill {name} {pid} failed");
        }
        self.child.wait().await?;
        Ok(())
    }

    /// Starts the engine again on the same data directory and addresses. Returns when it
    /// has printed its connection details; [`crate::connection::wait_ready`] tells when
    /// it accepts work.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let (child, target, _) =
            spawn(&self.binary, self.data_dir.path(), self.addresses.clone()).await?;
        self.child = child;
        self.target = target;
        Ok(())
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop(StopSignal::Term).await;
    }
}

async fn spawn(
    binary: &Path,
    data_dir: &Path,
    addresses: Option<(String, String)>,
) -> anyhow::Result<(Child, Target, (String, String))> {
    let (grpc, http) = addresses.unwrap_or(("127.0.0.1:0".into(), "127.0.0.1:0".into()));
    let mut child = Command::new(binary)
        .arg("lite")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--grpc-addr", &grpc, "--http-addr", &http])
        .env("ADZE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} lite", binary.display()))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let mut lines = BufReader::new(stderr).lines();
    let (mut token, mut grpc_addr, mut server_url) = (None, None, None);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while token.is_none() || grpc_addr.is_none() || server_url.is_none() {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .context("the engine did not print its connection details in time")??
            .context("the engine exited before it was ready (see its stderr above)")?;
        let line = line.trim();
        if let Some(value) = line.strip_prefix("export HATCHET_CLIENT_TOKEN=") {
            token = Some(value.to_string());
        } else if let Some(value) = line.strip_prefix("export HATCHET_CLIENT_HOST_PORT=") {
            grpc_addr = Some(value.to_string());
        } else if let Some(value) = line.strip_prefix("export HATCHET_CLIENT_SERVER_URL=") {
            server_url = Some(value.to_string());
        } else if !is_banner(line) {
            eprintln!("engine: {line}");
        }
    }
    // Keep draining the engine's log so it never blocks on a full pipe.
    tokio::spawn(async move {
        let mut out = tokio::io::stderr();
        while let Ok(Some(line)) = lines.next_line().await {
            if !is_banner(line.trim()) {
                let _ = out.write_all(format!("engine: {line}\n").as_bytes()).await;
            }
        }
    });
    let grpc_addr = grpc_addr.expect("loop ends when set");
    let server_url = server_url.expect("loop ends when set");
    let http_addr = server_url.trim_start_matches("http://").to_string();
    let target = Target {
        grpc_url: format!("http://{grpc_addr}"),
        token: token.expect("loop ends when set"),
    };
    Ok((child, target, (grpc_addr, http_addr)))
}

/// The connection details `adze lite` prints at start, which the bench reads itself.
fn is_banner(line: &str) -> bool {
    line.is_empty() || line.starts_with("export ") || line.starts_with("adze lite is running")
}

/// Reads `/proc/<pid>/stat` (CPU ticks) and `/proc/<pid>/status` (resident set).
pub fn sample_process(pid: u32) -> anyhow::Result<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after_name = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc stat")?
        .iter()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok(ProcessSample {
        cpu: Duration::from_millis(ticks * 1000 / clock_ticks_per_second()),
        rss_bytes: kib("VmRSS:"),
        peak_rss_bytes: kib("VmHWM:"),
    })
}

/// Linux reports CPU time in USER_HZ ticks, which is 100 on every mainstream platform.
fn clock_ticks_per_second() -> u64 {
    100
}

/// CPU used between two samples, as a share of one core.
pub fn cpu_share(before: ProcessSample, after: ProcessSample, wall: Duration) -> f64 {
    let used = after.cpu.saturating_sub(before.cpu);
    used.as_secs_f64() / wall.as_secs_f64().max(1e-9)
}
