//! The scenarios: each one sets up an engine, a workflow, workers and a producer, runs,
//! checks that every run executed exactly its tasks, and reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use crate::connection::{Target, wait_ready};
use crate::engine::{LiteEngine, ProcessSample, StopSignal, cpu_share};
use crate::ledger::Ledger;
use crate::producer::{Plan, Produced, Via, produce};
use crate::report::{EngineFigures, Report, utc_now};
use crate::stats::Percentiles;
use crate::worker::{Behaviour, Fleet};
use crate::workload::{Shape, now_micros};

/// Options every scenario takes. Unset ones get the scenario's own default.
#[derive(Args, Debug, Clone, Default)]
pub struct Options {
    /// The `adze` binary the bench starts as `adze lite` (default: `adze` next to this
    /// binary). Ignored with --target.
    #[arg(long, env = "ADZE_BIN")]
    pub adze: Option<PathBuf>,
    /// gRPC URL of an engine that is already running (`lite` or `server`), instead of
    /// starting one. Needs --token; engine CPU and memory are then not reported.
    #[arg(long, requires = "token")]
    pub target: Option<String>,
    /// API token for --target.
    #[arg(long, env = "ADZE_BENCH_TOKEN")]
    pub token: Option<String>,
    /// Runs to start.
    #[arg(long)]
    pub count: Option<u64>,
    /// Runs per second (default: as fast as the engine accepts them).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds to produce for, at --rate (sets --count to rate × duration).
    #[arg(long, requires = "rate")]
    pub duration: Option<f64>,
    /// Workers, each on its own connection.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Slots per worker.
    #[arg(long)]
    pub slots: Option<i32>,
    /// Levels of the DAG (1: a single task).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Tasks on each level after the first (the fan-out).
    #[arg(long)]
    pub width: Option<usize>,
    /// Bytes of padding in each run's input.
    #[arg(long)]
    pub payload_bytes: Option<usize>,
    /// Milliseconds each task works before completing.
    #[arg(long)]
    pub task_ms: Option<u64>,
    /// How runs are started.
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    /// Runs per producer call (1: single calls; up to 1,000: bulk calls).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Producer calls in flight at most.
    #[arg(long)]
    pub in_flight: Option<usize>,
    /// Producer connections.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Write latency-over-time and histogram PNGs into this directory.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Record a CPU profile of the engine over the measured window into this file
    /// (`perf record -e cpu-clock -g`; read it with `perf report -i FILE`).
    #[arg(long)]
    pub perf: Option<PathBuf>,
    /// Seconds to wait for every run to finish before failing.
    #[arg(long, default_value_t = 900.0)]
    pub timeout: f64,
}

/// The restart scenario's own options.
#[derive(Args, Debug, Clone)]
pub struct RestartOptions {
    /// How the engine is stopped with the backlog queued.
    #[arg(long, value_enum, default_value = "kill")]
    pub signal: StopSignal,
}

/// The release scenario's own options.
#[derive(Args, Debug, Clone)]
pub struct ReleaseOptions {
    /// Milliseconds a task holds its slot before releasing it.
    #[arg(long, default_value_t = 20)]
    pub hold_ms: u64,
    /// Milliseconds a task runs on after releasing its slot.
    #[arg(long, default_value_t = 20)]
    pub tail_ms: u64,
}

/// Defaults that differ between scenarios.
struct Defaults {
    count: u64,
    batch: usize,
    in_flight: usize,
    workers: usize,
    slots: i32,
    depth: usize,
    width: usize,
}

/// The settings a scenario runs with, once defaults are applied.
#[derive(Debug, Clone, serde::Serialize)]
struct Settings {
    workers: usize,
    slots: i32,
    task_ms: u64,
    plan: Plan,
    shape: Shape,
}

impl Options {
    fn settings(&self, name: &str, defaults: Defaults) -> Settings {
        let count = match (self.rate, self.duration) {
            (Some(rate), Some(seconds)) => (rate * seconds).round() as u64,
            _ => self.count.unwrap_or(defaults.count),
        };
        Settings {
            workers: self.workers.unwrap_or(defaults.workers),
            slots: self.slots.unwrap_or(defaults.slots),
            task_ms: self.task_ms.unwrap_or(0),
            plan: Plan {
                count,
                rate: self.rate,
                batch: self.batch.unwrap_or(defaults.batch).clamp(1, 1000),
                connections: self.connections.unwrap_or(2),
                in_flight: self.in_flight.unwrap_or(defaults.in_flight),
                via: self.via.unwrap_or(Via::Trigger),
            },
            shape: Shape {
                // Unique per run, so several benches can share one engine.
                workflow: format!("bench-{name}-{}", now_micros()),
                depth: self.depth.unwrap_or(defaults.depth).max(1),
                width: self.width.unwrap_or(defaults.width).max(1),
                event_key: format!("bench:{name}:{}", now_micros()),
                payload_bytes: self.payload_bytes.unwrap_or(0),
                timeout: "10m".into(),
            },
        }
    }

    async fn engine(&self) -> anyhow::Result<Engine> {
        if let Some(url) = &self.target {
            let token = self.token.clone().context("--target needs --token")?;
            return Ok(Engine {
                lite: None,
                target: Target {
                    grpc_url: url.clone(),
                    token,
                },
            });
        }
        let binary = match &self.adze {
            Some(path) => path.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("the bench binary has no directory")?
                .join("adze"),
        };
        if !binary.exists() {
            bail!(
                "no adze binary at {} (build it with `cargo build --release -p adze`, or pass --adze PATH or --target URL)",
                binary.display()
            );
        }
        let lite = LiteEngine::start(&binary).await?;
        wait_ready(&lite.target, Duration::from_secs(60)).await?;
        Ok(Engine {
            target: lite.target.clone(),
            lite: Some(lite),
        })
    }
}

/// The engine a scenario runs against.
struct Engine {
    lite: Option<LiteEngine>,
    target: Target,
}

impl Engine {
    /// Starts `perf record` on the engine process if `--perf` asks for it.
    fn profile(&self, options: &Options) -> anyhow::Result<Option<Profile>> {
        let pid = self.lite.as_ref().and_then(|lite| lite.pid());
        match (&options.perf, pid) {
            (Some(file), Some(pid)) => Profile::start(pid, file).map(Some),
            _ => Ok(None),
        }
    }

    fn sample(&self) -> Option<ProcessSample> {
        self.lite.as_ref().and_then(|lite| lite.sample().ok())
    }

    fn describe(&self) -> String {
        match &self.lite {
            Some(_) => "adze lite started by the bench".into(),
            None => self.target.grpc_url.clone(),
        }
    }

    async fn shutdown(self) {
        if let Some(lite) = self.lite {
            lite.shutdown().await;
        }
    }
}

/// A `perf record` attached to the engine for the measured window.
struct Profile {
    child: tokio::process::Child,
    file: PathBuf,
}

impl Profile {
    fn start(pid: u32, file: &std::path::Path) -> anyhow::Result<Profile> {
        let child = tokio::process::Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "499", "-g", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(file)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start perf (is it installed?)")?;
        Ok(Profile {
            child,
            file: file.to_path_buf(),
        })
    }

    /// Stops recording (SIGINT makes perf write its file) and waits for it.
    async fn finish(profile: Option<Profile>) -> anyhow::Result<()> {
        let Some(mut profile) = profile else {
            return Ok(());
        };
        if let Some(pid) = profile.child.id() {
            tokio::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await?;
        }
        profile.child.wait().await?;
        eprintln!("profile: perf report -i {}", profile.file.display());
        Ok(())
    }
}

/// Engine CPU over a window and its memory high-water mark.
fn engine_figures(window: &Window, tasks: u64) -> Option<EngineFigures> {
    let (before, after, loaded) = (window.before?, window.after?, window.loaded);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let cpu_seconds = after.cpu.saturating_sub(before.cpu).as_secs_f64();
    Some(EngineFigures {
        cpu_cores: cpu_share(before, after, window.length),
        cpu_seconds,
        cpu_us_per_task: cpu_seconds * 1e6 / tasks.max(1) as f64,
        peak_rss_mib: mib(after.peak_rss_bytes),
        loaded_rss_mib: loaded.map(|sample| mib(sample.rss_bytes)),
    })
}

/// Prints progress on stderr until dropped.
struct Progress(tokio::task::JoinHandle<()>);

impl Progress {
    fn start(name: &str, ledger: Arc<Ledger>) -> Progress {
        let name = name.to_string();
        let started = Instant::now();
        Progress(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (done, expected) = (ledger.completed_count(), ledger.expected());
                eprintln!(
                    "[{name}] {:>6.1} s  completed {done}/{expected} ({:.0}%)",
                    started.elapsed().as_secs_f64(),
                    100.0 * done as f64 / expected.max(1) as f64
                );
            }
        }))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until every expected execution has completed, then a moment more so that a
/// doubled execution would still be seen.
async fn wait_for_completion(
    ledger: &Ledger,
    fleet: &mut Fleet,
    options: &Options,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs_f64(options.timeout);
    let deadline = Instant::now() + timeout;
    while ledger.completed_count() < ledger.expected() {
        fleet.check()?;
        if Instant::now() > deadline {
            bail!(
                "only {} of {} executions completed within {timeout:?}",
                ledger.completed_count(),
                ledger.expected()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.check()
}

fn rate(count: u64, window: Duration) -> f64 {
    count as f64 / window.as_secs_f64().max(1e-9)
}

fn behaviour(settings: &Settings) -> Behaviour {
    Behaviour::Work(Duration::from_millis(settings.task_ms))
}

/// Workers first, then the producer: runs are triggered and executed as they arrive.
/// `name` is `steady`, `dag` or `fanout`: they differ only in their defaults.
pub async fn steady(name: &str, options: &Options) -> anyhow::Result<Report> {
    let (depth, width) = match name {
        "dag" => (2, 1),
        "fanout" => (2, 2),
        _ => (1, 1),
    };
    let settings = options.settings(
        name,
        Defaults {
            count: 20_000,
            batch: 1,
            in_flight: 256,
            workers: 4,
            slots: 100,
            depth,
            width,
        },
    );
    let engine = options.engine().await?;
    let mut clients = engine.target.connect().await?;
    settings.shape.register(&mut clients).await?;
    let started = Instant::now();
    let ledger = Arc::new(Ledger::new(
        settings.plan.count,
        settings.shape.tasks_per_run(),
        started,
    ));
    let mut fleet = Fleet::start(
        &engine.target,
        &settings.shape,
        settings.workers,
        settings.slots,
        behaviour(&settings),
        ledger.clone(),
    )
    .await?;
    let _progress = Progress::start(name, ledger.clone());
    let before = engine.sample();
    let profile = engine.profile(options)?;
    let window_start = Instant::now();
    let produced = produce(&engine.target, &settings.shape, &settings.plan).await?;
    wait_for_completion(&ledger, &mut fleet, options).await?;
    Profile::finish(profile).await?;
    let window = ledger
        .last_completion()
        .unwrap_or_else(Instant::now)
        .duration_since(window_start);
    let window = Window {
        label: "first trigger → last completion",
        length: window,
        before,
        after: engine.sample(),
        loaded: None,
    };
    fleet.stop();
    let phases = vec![("produce".into(), produced.elapsed.as_secs_f64())];
    let parameters = serde_json::to_value(&settings)?;
    let report = report(name, &engine, parameters, produced, &ledger, window, phases);
    finish(engine, &ledger, options, report).await
}

/// Every run queued before any worker connects, then drained.
pub async fn backlog(options: &Options) -> anyhow::Result<Report> {
    let settings = backlog_settings("backlog", options);
    let engine = options.engine().await?;
    let queued = enqueue(&engine, &settings).await?;
    let ledger = queued.ledger.clone();
    let _progress = Progress::start("backlog", ledger.clone());
    let loaded = engine.sample();
    let mut window = drain(&engine, &settings, &ledger, options).await?;
    window.loaded = loaded;
    let phases = vec![
        ("enqueue".into(), queued.produced.elapsed.as_secs_f64()),
        ("drain".into(), window.length.as_secs_f64()),
    ];
    let parameters = serde_json::to_value(&settings)?;
    let report = report(
        "backlog",
        &engine,
        parameters,
        queued.produced,
        &ledger,
        window,
        phases,
    );
    finish(engine, &ledger, options, report).await
}

/// A backlog queued, the engine stopped and started again, then drained: how long until
/// it is ready and until work flows again.
pub async fn restart(options: &Options, restart: &RestartOptions) -> anyhow::Result<Report> {
    if options.target.is_some() {
        bail!("the restart scenario restarts the engine itself; it cannot use --target");
    }
    let settings = backlog_settings("restart", options);
    let mut engine = options.engine().await?;
    let queued = enqueue(&engine, &settings).await?;
    let ledger = queued.ledger.clone();
    let loaded = engine.sample();
    let lite = engine.lite.as_mut().expect("started by the bench");
    let stopping = Instant::now();
    lite.stop(restart.signal).await?;
    let stopped = stopping.elapsed();
    let restarting = Instant::now();
    lite.restart().await?;
    engine.target = lite.target.clone();
    let ready = wait_ready(&engine.target, Duration::from_secs(600)).await?;
    let ready = restarting.elapsed().max(ready);
    let _progress = Progress::start("restart", ledger.clone());
    let mut window = drain(&engine, &settings, &ledger, options).await?;
    window.loaded = loaded;
    window.label = "first start after the restart → last completion";
    let first_start = ledger
        .first_start()
        .map(|at| at.duration_since(restarting).as_secs_f64())
        .unwrap_or(f64::NAN);
    let phases = vec![
        ("enqueue".into(), queued.produced.elapsed.as_secs_f64()),
        ("stop".into(), stopped.as_secs_f64()),
        ("restart → ready".into(), ready.as_secs_f64()),
        ("restart → first task start".into(), first_start),
        ("drain".into(), window.length.as_secs_f64()),
    ];
    let parameters = serde_json::json!({ "settings": settings, "signal": restart.signal });
    let report = report(
        "restart",
        &engine,
        parameters,
        queued.produced,
        &ledger,
        window,
        phases,
    );
    finish(engine, &ledger, options, report).await
}

/// One-slot workers; each task holds its slot, releases it, and runs on. The figure is
/// release → next start on the same worker, with the queue never empty.
pub async fn release(options: &Options, release: &ReleaseOptions) -> anyhow::Result<Report> {
    let mut settings = backlog_settings("release", options);
    settings.workers = options.workers.unwrap_or(4);
    settings.slots = options.slots.unwrap_or(1);
    settings.plan.count = options.count.unwrap_or(1_000);
    let engine = options.engine().await?;
    let queued = enqueue(&engine, &settings).await?;
    let ledger = queued.ledger.clone();
    let _progress = Progress::start("release", ledger.clone());
    let before = engine.sample();
    let window_start = Instant::now();
    let mut fleet = Fleet::start(
        &engine.target,
        &settings.shape,
        settings.workers,
        settings.slots,
        Behaviour::HoldThenRelease {
            hold: Duration::from_millis(release.hold_ms),
            tail: Duration::from_millis(release.tail_ms),
        },
        ledger.clone(),
    )
    .await?;
    wait_for_completion(&ledger, &mut fleet, options).await?;
    let window = Window {
        label: "workers connected → last completion",
        length: window_start.elapsed(),
        before,
        after: engine.sample(),
        loaded: None,
    };
    fleet.stop();
    let phases = vec![("enqueue".into(), queued.produced.elapsed.as_secs_f64())];
    let parameters = serde_json::json!({
        "settings": settings,
        "hold_ms": release.hold_ms,
        "tail_ms": release.tail_ms,
    });
    let report = report(
        "release",
        &engine,
        parameters,
        queued.produced,
        &ledger,
        window,
        phases,
    );
    finish(engine, &ledger, options, report).await
}

fn backlog_settings(name: &str, options: &Options) -> Settings {
    options.settings(
        name,
        Defaults {
            count: 1_000_000,
            batch: 1000,
            in_flight: 4,
            workers: 4,
            slots: 500,
            depth: 1,
            width: 1,
        },
    )
}

struct Queued {
    ledger: Arc<Ledger>,
    produced: Produced,
}

/// Registers the workflow and queues every run, with no worker connected.
async fn enqueue(engine: &Engine, settings: &Settings) -> anyhow::Result<Queued> {
    let mut clients = engine.target.connect().await?;
    settings.shape.register(&mut clients).await?;
    let ledger = Arc::new(Ledger::new(
        settings.plan.count,
        settings.shape.tasks_per_run(),
        Instant::now(),
    ));
    eprintln!("[enqueue] queueing {} runs", settings.plan.count);
    let produced = produce(&engine.target, &settings.shape, &settings.plan).await?;
    eprintln!(
        "[enqueue] {} runs queued in {:.1} s",
        produced.accepted,
        produced.elapsed.as_secs_f64()
    );
    Ok(Queued { ledger, produced })
}

/// The measured part of a scenario, and what the engine used over it.
struct Window {
    label: &'static str,
    length: Duration,
    before: Option<ProcessSample>,
    after: Option<ProcessSample>,
    /// The engine at its most loaded moment (e.g. with the whole backlog queued).
    loaded: Option<ProcessSample>,
}

/// The figures every scenario reports.
fn report(
    name: &str,
    engine: &Engine,
    parameters: serde_json::Value,
    produced: Produced,
    ledger: &Ledger,
    window: Window,
    phases: Vec<(String, f64)>,
) -> Report {
    let completed = ledger.completed_count();
    let release = ledger.release_latencies();
    Report {
        scenario: name.into(),
        date: utc_now(),
        target: engine.describe(),
        parameters,
        accepted: produced.accepted,
        accepted_per_s: rate(produced.accepted, produced.elapsed),
        completed_tasks: completed,
        completed_per_s: rate(completed, window.length),
        window: window.label.into(),
        event_to_start: Percentiles::of_micros(latency_samples(ledger)),
        trigger_ack: Percentiles::of_micros(produced.ack_micros),
        release_to_start: (!release.is_empty()).then(|| Percentiles::of_micros(release)),
        phases,
        engine: engine_figures(&window, completed),
        correctness: ledger.correctness(),
    }
}

/// Connects the workers and waits until the queue is drained.
async fn drain(
    engine: &Engine,
    settings: &Settings,
    ledger: &Arc<Ledger>,
    options: &Options,
) -> anyhow::Result<Window> {
    let before = engine.sample();
    let profile = engine.profile(options)?;
    let started = Instant::now();
    let mut fleet = Fleet::start(
        &engine.target,
        &settings.shape,
        settings.workers,
        settings.slots,
        behaviour(settings),
        ledger.clone(),
    )
    .await?;
    wait_for_completion(ledger, &mut fleet, options).await?;
    Profile::finish(profile).await?;
    // From the first start, as the peers measure their drain.
    let window = ledger
        .last_completion()
        .unwrap_or_else(Instant::now)
        .duration_since(ledger.first_start().unwrap_or(started));
    let after = engine.sample();
    fleet.stop();
    Ok(Window {
        label: "first start → last completion",
        length: window,
        before,
        after,
        loaded: None,
    })
}

fn latency_samples(ledger: &Ledger) -> Vec<u32> {
    ledger
        .latencies()
        .into_iter()
        .map(|(_, latency)| latency)
        .collect()
}

/// Stops the engine and plots if asked.
async fn finish(
    engine: Engine,
    ledger: &Ledger,
    options: &Options,
    report: Report,
) -> anyhow::Result<Report> {
    engine.shutdown().await;
    if let Some(dir) = &options.plot {
        crate::plot::write(dir, &report.scenario, &ledger.latencies())?;
    }
    Ok(report)
}
