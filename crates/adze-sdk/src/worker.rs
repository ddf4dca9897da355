//! The worker: registers its workflows and capacity, keeps a ListenV2 stream open
//! (reconnecting with backoff), heartbeats, runs assigned tasks within its local slot
//! limit, and on shutdown stops taking work and drains what it runs.

mod execution;
mod listener;
mod pause;
pub(crate) mod slots;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use adze_proto::v0::{
    ActionType, AssignedAction, HeartbeatRequest, RuntimeInfo, WorkerRegisterRequest,
};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::task::Handler;
use crate::workflow::{Definition, Workflow};
use execution::Execution;
use slots::LocalSlots;

/// Hatchet's SDKs heartbeat every 4 s; the engine declares a worker lost after 30 s.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(4);
/// How long a cancelled task's body may take to return before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
const DEFAULT_SLOTS: u32 = 100;
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Configures a worker; get one from [`Client::worker`].
///
/// ```no_run
/// # async fn example(client: adze_sdk::Client, workflow: adze_sdk::Workflow<adze_sdk::Empty>) -> adze_sdk::Result<()> {
/// let worker = client
///     .worker("release-worker")
///     .slots(1)
///     .workflow(&workflow)
///     .start()
///     .await?;
/// tokio::signal::ctrl_c().await.ok();
/// worker.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct WorkerBuilder {
    client: Client,
    name: String,
    capacity: BTreeMap<String, u32>,
    workflows: Vec<Definition>,
    drain_timeout: Duration,
}

impl WorkerBuilder {
    pub(crate) fn new(client: Client, name: String) -> Self {
        WorkerBuilder {
            client,
            name,
            capacity: BTreeMap::new(),
            workflows: Vec::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// Units of the `default` slot type: how many ordinary tasks run at once (default 100).
    pub fn slots(self, units: u32) -> Self {
        self.slot_type("default", units)
    }

    /// Units of a named slot type (e.g. `durable`, or your own `gpu`), which tasks ask for
    /// with [`Task::slot_request`](crate::Task::slot_request).
    pub fn slot_type(mut self, slot_type: impl Into<String>, units: u32) -> Self {
        self.capacity.insert(slot_type.into(), units);
        self
    }

    /// Serves `workflow`'s tasks (and registers it at start).
    pub fn workflow<I>(mut self, workflow: &Workflow<I>) -> Self
    where
        I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        self.workflows.push(workflow.definition().clone());
        self
    }

    /// How long [`Worker::shutdown`] waits for running tasks before cancelling them
    /// (default 60 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Registers the workflows and the worker, then serves in the background.
    pub async fn start(self) -> Result<Worker> {
        if self.workflows.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "worker {:?} has no workflows to serve",
                self.name
            )));
        }
        let config = self.client.config().clone();
        let mut capacity = self.capacity;
        if capacity.is_empty() {
            capacity.insert("default".into(), DEFAULT_SLOTS);
        }
        let mut actions = HashMap::new();
        for workflow in &self.workflows {
            let registration = workflow.registration(&config)?;
            self.client
                .connection()
                .admin()
                .put_workflow(registration)
                .await?;
            for task in &workflow.tasks {
                let action = ActionEntry {
                    handler: task.handler.clone(),
                    slot_units: workflow.slot_units(task),
                };
                actions.insert(workflow.action(&config, &task.name), Arc::new(action));
            }
        }
        let registration = WorkerRegisterRequest {
            worker_name: self.name.clone(),
            actions: actions.keys().cloned().collect(),
            slot_config: capacity
                .iter()
                .map(|(slot_type, units)| {
                    (slot_type.clone(), i32::try_from(*units).unwrap_or(i32::MAX))
                })
                .collect(),
            runtime_info: Some(RuntimeInfo {
                sdk_version: Some(env!("CARGO_PKG_VERSION").into()),
                os: Some(std::env::consts::OS.into()),
                extra: Some("adze-sdk (rust)".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = listener::register(self.client.connection(), &registration).await?;
        let (worker_id, _) = watch::channel(id.clone());
        let stop = CancellationToken::new();
        let session = Session {
            client: self.client,
            actions,
            slots: LocalSlots::new(&capacity),
            running: Running::default(),
            tasks: JoinSet::new(),
            worker_id,
            drain_timeout: self.drain_timeout,
        };
        let serving = tokio::spawn(session.serve(registration, stop.clone()));
        Ok(Worker { id, stop, serving })
    }
}

/// A started worker. Dropping it leaves it serving until the runtime ends; call
/// [`shutdown`](Worker::shutdown) to stop it cleanly.
pub struct Worker {
    id: String,
    stop: CancellationToken,
    serving: JoinHandle<()>,
}

impl Worker {
    /// The id the engine gave the worker when it registered.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops taking work (the worker is paused on the engine), lets running tasks finish
    /// within the drain timeout, cancels what is left, and returns when all have ended.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.serving.await {
            tracing::error!(%error, "the worker's serving task ended abnormally");
        }
    }
}

pub(crate) struct ActionEntry {
    pub(crate) handler: Handler,
    pub(crate) slot_units: BTreeMap<String, u32>,
}

/// Attempts in flight, by task id and attempt, so a cancel finds its attempt.
#[derive(Clone, Default)]
pub(crate) struct Running(Arc<Mutex<HashMap<AttemptKey, CancellationToken>>>);

/// A task's id and its attempt number (the assignment's retry count).
pub(crate) type AttemptKey = (String, i32);

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashMap<AttemptKey, CancellationToken>> {
        // A panic elsewhere cannot leave the map half-written: every update is one call.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The new attempt's token, or None when it already runs here (a re-delivery after
    /// a reconnect).
    fn begin(&self, key: AttemptKey) -> Option<CancellationToken> {
        let mut running = self.lock();
        if running.contains_key(&key) {
            return None;
        }
        let token = CancellationToken::new();
        running.insert(key, token.clone());
        Some(token)
    }

    fn cancel(&self, key: &AttemptKey) {
        if let Some(token) = self.lock().get(key) {
            token.cancel();
        }
    }

    fn cancel_all(&self) {
        self.lock().values().for_each(CancellationToken::cancel);
    }

    pub(crate) fn finish(&self, key: &AttemptKey) {
        self.lock().remove(key);
    }
}

struct Session {
    client: Client,
    actions: HashMap<String, Arc<ActionEntry>>,
    slots: LocalSlots,
    running: Running,
    tasks: JoinSet<()>,
    worker_id: watch::Sender<String>,
    drain_timeout: Duration,
}

impl Session {
    async fn serve(mut self, registration: WorkerRegisterRequest, stop: CancellationToken) {
        let connection = self.client.connection().clone();
        let heartbeat = tokio::spawn(heartbeat(connection.clone(), self.worker_id.subscribe()));
        // The listener outlives `stop` until the drain is over: cancels must still arrive.
        let listening = CancellationToken::new();
        let (assigned_tx, mut assigned) = mpsc::channel(64);
        let listener = tokio::spawn(listener::listen(
            connection,
            registration,
            self.worker_id.clone(),
            assigned_tx,
            listening.clone(),
        ));
        let mut drain_deadline: Option<Instant> = None;
        loop {
            if drain_deadline.is_some() && self.tasks.is_empty() {
                break;
            }
            let deadline = drain_deadline.unwrap_or_else(Instant::now);
            tokio::select! {
                Some(action) = assigned.recv() => self.dispatch(action),
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = stop.cancelled(), if drain_deadline.is_none() => {
                    self.pause().await;
                    drain_deadline = Some(Instant::now() + self.drain_timeout);
                }
                _ = tokio::time::sleep_until(deadline), if drain_deadline.is_some() => {
                    tracing::warn!(running = self.tasks.len(), "drain timeout: cancelling the tasks still running");
                    break;
                }
            }
        }
        self.running.cancel_all();
        let drained = tokio::time::timeout(CANCEL_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.shutdown().await;
        }
        listening.cancel();
        let _ = listener.await;
        heartbeat.abort();
        tracing::info!(worker_id = %*self.worker_id.borrow(), "worker stopped");
    }

    fn dispatch(&mut self, action: AssignedAction) {
        let key = (action.task_run_external_id.clone(), action.retry_count);
        match ActionType::try_from(action.action_type) {
            Ok(ActionType::StartStepRun) => {
                let Some(cancel) = self.running.begin(key) else {
                    return;
                };
                let execution = Execution {
                    connection: self.client.connection().clone(),
                    worker_id: self.worker_id.borrow().clone(),
                    entry: self.actions.get(&action.action_id).cloned(),
                    slots: self.slots.clone(),
                    running: self.running.clone(),
                    cancel,
                };
                self.tasks.spawn(execution.run(action));
            }
            Ok(ActionType::CancelStepRun) => {
                tracing::info!(task = %action.task_run_external_id, "rx: cancel step run");
                self.running.cancel(&key);
            }
            _ => tracing::warn!(
                action_type = action.action_type,
                action = %action.action_id,
                "ignoring an action type this SDK does not handle"
            ),
        }
    }

    async fn pause(&self) {
        let worker_id = self.worker_id.borrow().clone();
        if let Err(error) = pause::pause(self.client.config(), &worker_id).await {
            tracing::warn!(%worker_id, %error, "could not pause the worker; it may still get work while draining");
        }
    }
}

async fn heartbeat(connection: crate::connection::Connection, worker_id: watch::Receiver<String>) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        ticks.tick().await;
        let request = HeartbeatRequest {
            worker_id: worker_id.borrow().clone(),
            heartbeat_at: Some(std::time::SystemTime::now().into()),
        };
        let sent = tokio::time::timeout(
            HEARTBEAT_INTERVAL,
            connection.dispatcher().heartbeat(request),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "heartbeat refused")
            }
            Err(_) => tracing::warn!("heartbeat timed out"),
        }
    }
}
