//! Bench workers: they register like an SDK worker, listen for assignments, report
//! STARTED and COMPLETED as the SDKs do, and count every execution in the ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adze_proto::v0::{
    ActionType, AssignedAction, HeartbeatRequest, ReleaseSlotRequest, StepActionEvent,
    StepActionEventType, WorkerListenRequest, WorkerRegisterRequest,
};
use anyhow::Context;
use tokio::task::JoinSet;

use crate::connection::{Clients, Target};
use crate::ledger::Ledger;
use crate::workload::{ActionPayload, Shape, now_micros};

/// How often workers heartbeat (the Python SDK's period).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(4);

/// What a task does once started.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Sleeps for the duration (zero: returns at once), then completes.
    Work(Duration),
    /// Holds its slot for `hold`, releases it, runs `tail` longer, then completes.
    HoldThenRelease { hold: Duration, tail: Duration },
}

/// A fleet of workers; dropping it (or [`Fleet::stop`]) disconnects them.
pub struct Fleet {
    tasks: JoinSet<anyhow::Result<()>>,
}

/// What one worker shares with the tasks it runs.
struct WorkerContext {
    clients: Clients,
    worker_id: String,
    ledger: Arc<Ledger>,
    positions: HashMap<String, usize>,
    behaviour: Behaviour,
    /// When this worker last released a slot, until its next start is seen.
    released_at: Mutex<Option<Instant>>,
}

impl Fleet {
    /// Registers `workers` workers with `slots` slots each and starts listening; returns
    /// once all of them have an open listen stream.
    pub async fn start(
        target: &Target,
        shape: &Shape,
        workers: usize,
        slots: i32,
        behaviour: Behaviour,
        ledger: Arc<Ledger>,
    ) -> anyhow::Result<Fleet> {
        let positions: HashMap<String, usize> = shape
            .task_names()
            .into_iter()
            .enumerate()
            .map(|(position, name)| (name, position))
            .collect();
        let mut tasks = JoinSet::new();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(workers.max(1));
        for index in 0..workers {
            let mut clients = target.connect().await?;
            let registered = clients
                .dispatcher
                .register(WorkerRegisterRequest {
                    worker_name: format!("bench-{index}"),
                    actions: shape.actions(),
                    slot_config: [("default".to_string(), slots)].into(),
                    ..Default::default()
                })
                .await
                .context("worker registration failed")?
                .into_inner();
            let context = Arc::new(WorkerContext {
                clients,
                worker_id: registered.worker_id,
                ledger: ledger.clone(),
                positions: positions.clone(),
                behaviour,
                released_at: Mutex::new(None),
            });
            let ready = ready_tx.clone();
            tasks.spawn(async move { listen(context, ready).await });
        }
        drop(ready_tx);
        for _ in 0..workers {
            if ready_rx.recv().await.is_none() {
                // A worker ended before it listened: its error is in the join set.
                if let Some(Ok(Err(error))) = tasks.join_next().await {
                    return Err(error);
                }
                anyhow::bail!("a worker stopped before it could listen");
            }
        }
        Ok(Fleet { tasks })
    }

    /// Fails if a worker has ended with an error.
    pub fn check(&mut self) -> anyhow::Result<()> {
        while let Some(ended) = self.tasks.try_join_next() {
            ended.context("a worker panicked")??;
        }
        Ok(())
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

async fn listen(
    context: Arc<WorkerContext>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let mut dispatcher = context.clients.dispatcher.clone();
    let mut stream = dispatcher
        .listen_v2(WorkerListenRequest {
            worker_id: context.worker_id.clone(),
        })
        .await
        .context("ListenV2 failed")?
        .into_inner();
    let _ = ready.send(()).await;
    // Owned by this task's JoinSets, so aborting the listener also ends them.
    let mut heartbeat = JoinSet::new();
    heartbeat.spawn(heartbeats(context.clone()));
    let mut running = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(action)) => {
                    if action.action_type == ActionType::StartStepRun as i32 {
                        let context = context.clone();
                        running.spawn(async move { run_task(context, action).await });
                    }
                }
                Ok(None) => break Ok(()),
                Err(status) => break Err(anyhow::anyhow!("listen stream failed: {status}")),
            },
            Some(ended) = running.join_next(), if !running.is_empty() => {
                if let Ok(Err(error)) = ended {
                    break Err(error);
                }
            }
        }
    };
    heartbeat.abort_all();
    outcome
}

async fn heartbeats(context: Arc<WorkerContext>) {
    let mut dispatcher = context.clients.dispatcher.clone();
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        let request = HeartbeatRequest {
            worker_id: context.worker_id.clone(),
            heartbeat_at: Some(timestamp_now()),
        };
        if let Err(status) = dispatcher.heartbeat(request).await {
            eprintln!("heartbeat failed: {status}");
        }
    }
}

async fn run_task(context: Arc<WorkerContext>, action: AssignedAction) -> anyhow::Result<()> {
    let started_us = now_micros();
    if let Some(released) = context.released_at.lock().expect("worker lock").take() {
        context
            .ledger
            .release_to_start(released.elapsed().as_micros() as u64);
    }
    let payload: ActionPayload = serde_json::from_str(&action.action_payload)
        .with_context(|| format!("task {} has no bench stamp", action.task_run_external_id))?;
    let position = context
        .positions
        .get(&action.task_name)
        .copied()
        .unwrap_or(usize::MAX);
    context.ledger.started(
        payload.input.id,
        position,
        started_us.saturating_sub(payload.input.created_us),
    );
    let mut dispatcher = context.clients.dispatcher.clone();
    dispatcher
        .send_step_action_event(step_event(
            &context,
            &action,
            StepActionEventType::StepEventTypeStarted,
            String::new(),
        ))
        .await
        .context("reporting STARTED failed")?;
    match context.behaviour {
        Behaviour::Work(duration) => {
            if !duration.is_zero() {
                tokio::time::sleep(duration).await;
            }
        }
        Behaviour::HoldThenRelease { hold, tail } => {
            tokio::time::sleep(hold).await;
            *context.released_at.lock().expect("worker lock") = Some(Instant::now());
            dispatcher
                .release_slot(ReleaseSlotRequest {
                    task_run_external_id: action.task_run_external_id.clone(),
                })
                .await
                .context("ReleaseSlot failed")?;
            tokio::time::sleep(tail).await;
        }
    }
    dispatcher
        .send_step_action_event(step_event(
            &context,
            &action,
            StepActionEventType::StepEventTypeCompleted,
            "{}".into(),
        ))
        .await
        .context("reporting COMPLETED failed")?;
    context.ledger.completed();
    Ok(())
}

fn step_event(
    context: &WorkerContext,
    action: &AssignedAction,
    kind: StepActionEventType,
    payload: String,
) -> StepActionEvent {
    StepActionEvent {
        worker_id: context.worker_id.clone(),
        job_id: action.job_id.clone(),
        job_run_id: action.job_run_id.clone(),
        task_id: action.task_id.clone(),
        task_run_external_id: action.task_run_external_id.clone(),
        action_id: action.action_id.clone(),
        event_timestamp: Some(timestamp_now()),
        event_type: kind as i32,
        event_payload: payload,
        retry_count: Some(action.retry_count),
        should_not_retry: None,
        retry_after_ms: None,
    }
}

fn timestamp_now() -> prost_types::Timestamp {
    let micros = now_micros();
    prost_types::Timestamp {
        seconds: (micros / 1_000_000) as i64,
        nanos: ((micros % 1_000_000) * 1000) as i32,
    }
}
