//! # adze-engine
//!
//! The runtime. Each tenant's scheduling state is owned by one actor (a task with a
//! mailbox), so it needs no locks; every change the actor decides is committed to the
//! store before anyone hears of it.
//!
//! ## Layout
//! - [`Engine`]: the handle the protocol adapters call; routes each call to its tenant
//! - [`tenant`]: the tenant actor: runs, tasks, queues, workers, liveness timers
//! - [`commit`]: the committer that makes an actor's decisions durable, then visible
//! - [`payload`]: what a worker is sent when a task starts
//! - [`attempts`]: a task's attempts, worked out from its history
//! - [`placement`]: where a tenant's actor runs when replicas share a database
//! - [`clock`]: wall-clock time as records store it

#![forbid(unsafe_code)]

pub mod attempts;
pub mod clock;
pub mod commit;
pub mod payload;
pub mod placement;
pub mod tenant;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adze_core::slots::SlotUnits;
use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::WorkflowSpec;
use adze_core::{Error, Millis, Result, RunId, TaskId, TenantId, WorkerId};
use adze_store::{EventRecord, Mutation, Store, StoreError, TaskRecord, WorkflowVersionRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::attempts::Attempt;
use crate::placement::{Call, Placement, Reply};
use crate::tenant::{Command, ReplayTarget};
pub use crate::tenant::{Outcome, RunSnapshot, WorkerView};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// A worker with no heartbeat for this long is lost.
    pub heartbeat_timeout: Duration,
    /// A worker whose listen stream closed and did not come back within this is lost.
    pub listen_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(30),
            listen_grace: Duration::from_secs(5),
        }
    }
}

/// A request to start one run of a workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerRequest {
    pub workflow_name: String,
    /// JSON object text.
    pub input: String,
    /// JSON object text.
    pub additional_metadata: String,
}

/// An event to record and to start the workflows it triggers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewEvent {
    pub key: String,
    /// JSON object text.
    pub payload: String,
    /// JSON object text.
    pub additional_metadata: String,
    pub scope: Option<String>,
}

/// A worker asking to serve actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRegistration {
    pub name: String,
    pub actions: Vec<String>,
    pub capacity: SlotUnits,
}

/// What a worker reports about a task it was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskEvent {
    pub worker_id: WorkerId,
    pub task_id: TaskId,
    /// The attempt the worker ran (`retry_count`); `None` means the current one.
    pub attempt: Option<u32>,
    pub kind: TaskEventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskEventKind {
    Started,
    /// The output, JSON text.
    Completed(String),
    Failed {
        error: String,
        retryable: bool,
    },
}

/// Which unfinished tasks a bulk cancel is about. Every part that is set must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilter {
    /// Runs created at or after this.
    pub since: Option<Millis>,
    /// Runs created at or before this.
    pub until: Option<Millis>,
    /// Tasks in one of these states, as callers see them (empty: any).
    pub statuses: Vec<RunStatus>,
    /// Runs of one of these workflows (empty: any).
    pub workflow_ids: Vec<uuid::Uuid>,
    /// Runs whose metadata has every one of these key/value pairs.
    pub additional_metadata: Vec<(String, String)>,
}

impl TaskFilter {
    pub(crate) fn matches_run(&self, run: &adze_store::RunRecord, workflow_id: uuid::Uuid) -> bool {
        let metadata = || {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
                &run.additional_metadata,
            )
            .unwrap_or_default()
        };
        self.since.is_none_or(|since| run.created_at >= since)
            && self.until.is_none_or(|until| run.created_at <= until)
            && (self.workflow_ids.is_empty() || self.workflow_ids.contains(&workflow_id))
            && (self.additional_metadata.is_empty() || {
                let metadata = metadata();
                self.additional_metadata.iter().all(|(key, value)| {
                    metadata.get(key).is_some_and(|found| match found {
                        serde_json::Value::String(text) => text == value,
                        // `count:3` matches the number 3 as well as the text "3".
                        other => serde_json::from_str::<serde_json::Value>(value)
                            .is_ok_and(|parsed| parsed == *other),
                    })
                })
            })
    }

    pub(crate) fn matches_task(&self, status: TaskStatus) -> bool {
        self.statuses.is_empty() || self.statuses.contains(&status.visible())
    }
}

/// What goes down a worker's listen stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub kind: AssignmentKind,
    pub tenant_id: TenantId,
    pub run_id: RunId,
    pub workflow_id: uuid::Uuid,
    pub workflow_version_id: uuid::Uuid,
    pub workflow_name: String,
    pub task_id: TaskId,
    pub task_name: String,
    pub action: String,
    pub attempt: u32,
    /// The action payload, JSON text.
    pub payload: String,
    pub additional_metadata: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignmentKind {
    Start,
    Cancel,
}

/// The engine: cheap to clone, shared by every adapter.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: EngineConfig,
    /// Set on replicas that share a database; `None` runs every tenant here.
    placement: Option<Arc<dyn Placement>>,
    tenants: Mutex<HashMap<TenantId, Actor>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A running tenant actor: its mailbox, and what stops it.
struct Actor {
    mailbox: mpsc::UnboundedSender<Command>,
    stop: CancellationToken,
}

/// How long a waiter on another replica's run is held before it asks again.
const REMOTE_WAIT: Duration = Duration::from_secs(5);

/// Maps storage failures onto what a caller can act on.
pub fn store_error(error: StoreError) -> Error {
    tracing::error!(%error, "store failure");
    match error {
        StoreError::Closed => Error::unavailable("the engine is shutting down"),
        // A lost lease passes: the replica that took the tenant over serves the retry.
        StoreError::Unavailable(_) | StoreError::Fenced(_) => {
            Error::unavailable(format!("{error}; retry"))
        }
        StoreError::Exhausted(_) => Error::exhausted(format!("{error}; retry")),
        other => Error::internal(format!("storage failure: {other}")),
    }
}

fn unexpected(reply: Reply) -> Error {
    Error::internal(format!(
        "unexpected answer from the tenant's owner: {reply:?}"
    ))
}

/// Unpacks the one variant of [`Reply`] a call answers with.
macro_rules! expect_reply {
    ($reply:expr, $variant:path) => {
        match $reply {
            $variant(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    };
}

impl Engine {
    /// Starts the engine on `store`, recovering every tenant that has unfinished work.
    pub async fn start(store: Arc<dyn Store>, config: EngineConfig) -> Result<Engine> {
        let engine = Engine::new(store, config, None);
        let tenants = engine
            .inner
            .store
            .tenants_to_recover()
            .await
            .map_err(store_error)?;
        for tenant in tenants {
            engine.open_tenant(tenant);
        }
        Ok(engine)
    }

    /// An engine that is one replica of several: `placement` decides which tenants run
    /// here and opens them with [`Engine::open_tenant`]; the rest are forwarded.
    pub fn replica(
        store: Arc<dyn Store>,
        config: EngineConfig,
        placement: Arc<dyn Placement>,
    ) -> Engine {
        Engine::new(store, config, Some(placement))
    }

    fn new(
        store: Arc<dyn Store>,
        config: EngineConfig,
        placement: Option<Arc<dyn Placement>>,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                store,
                config,
                placement,
                tenants: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Stops every tenant actor after its pending commits, and waits for them.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Starts the tenant's actor here (recovering it from the store) unless it runs.
    pub fn open_tenant(&self, tenant: TenantId) {
        self.mailbox(tenant);
    }

    /// Stops the tenant's actor here: its lease went to another replica. Commits it has
    /// decided still complete; its workers' listen streams end, so they reconnect.
    pub fn close_tenant(&self, tenant: TenantId) {
        let mut tenants = self.inner.tenants.lock().expect("tenant map poisoned");
        if let Some(actor) = tenants.remove(&tenant) {
            actor.stop.cancel();
        }
    }

    /// The mailbox of the tenant's actor, starting the actor on first use.
    fn mailbox(&self, tenant: TenantId) -> mpsc::UnboundedSender<Command> {
        let mut tenants = self.inner.tenants.lock().expect("tenant map poisoned");
        if let Some(actor) = tenants
            .get(&tenant)
            .filter(|actor| !actor.mailbox.is_closed())
        {
            return actor.mailbox.clone();
        }
        let stop = self.inner.shutdown.child_token();
        let fence = self
            .inner
            .placement
            .as_ref()
            .map(|placement| Mutation::Fence {
                tenant_id: tenant,
                owner: placement.replica(),
            });
        let mailbox = tenant::spawn(
            tenant,
            self.inner.store.clone(),
            self.inner.config.clone(),
            stop.clone(),
            &self.inner.tasks,
            fence,
        );
        tenants.insert(
            tenant,
            Actor {
                mailbox: mailbox.clone(),
                stop,
            },
        );
        mailbox
    }

    /// Sends a command to the local actor and waits for its (committed) answer.
    async fn ask<T>(
        &self,
        tenant: TenantId,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.mailbox(tenant)
            .send(command(reply))
            .map_err(|_| Error::unavailable("the engine is shutting down"))?;
        answer
            .await
            .map_err(|_| Error::unavailable("the engine is shutting down"))?
    }

    /// Runs `call` wherever the tenant's actor is: here, or on its owner.
    pub async fn call(&self, tenant: TenantId, call: Call) -> Result<Reply> {
        if let Some(placement) = &self.inner.placement
            && !placement.is_local(tenant).await?
        {
            return placement.forward(tenant, call).await;
        }
        self.execute(tenant, call).await
    }

    /// Runs `call` on the local actor.
    async fn execute(&self, tenant: TenantId, call: Call) -> Result<Reply> {
        Ok(match call {
            Call::WorkflowVersion(version) => {
                self.ask(tenant, |reply| Command::WorkflowVersion { version, reply })
                    .await?;
                Reply::Done
            }
            Call::Trigger(requests) => Reply::RunIds(
                self.ask(tenant, |reply| Command::Trigger { requests, reply })
                    .await?,
            ),
            Call::PushEvents(events) => Reply::Events(
                self.ask(tenant, |reply| Command::PushEvents { events, reply })
                    .await?,
            ),
            Call::RegisterWorker(registration) => Reply::Worker(
                self.ask(tenant, |reply| Command::RegisterWorker {
                    registration,
                    reply,
                })
                .await?,
            ),
            Call::Listen { worker, replica } => {
                let placement = self.inner.placement.as_ref().ok_or_else(|| {
                    Error::internal("a remote listen reached an engine without replicas")
                })?;
                let (stream, id) = placement.stream_to(replica, tenant, worker);
                let generation = self
                    .ask(tenant, |reply| Command::Listen {
                        worker,
                        stream,
                        reply,
                    })
                    .await?;
                Reply::Listening(placement::Listening {
                    generation,
                    stream: id,
                    owner: placement.replica(),
                })
            }
            Call::ListenClosed { worker, generation } => {
                let _ = self
                    .mailbox(tenant)
                    .send(Command::ListenClosed { worker, generation });
                Reply::Done
            }
            Call::Unsubscribe(worker) => {
                self.ask(tenant, |reply| Command::Unsubscribe { worker, reply })
                    .await?;
                Reply::Done
            }
            Call::Heartbeat(worker) => {
                self.ask(tenant, |reply| Command::Heartbeat { worker, reply })
                    .await?;
                Reply::Done
            }
            Call::Workers => {
                Reply::Workers(self.ask(tenant, |reply| Command::Workers { reply }).await?)
            }
            Call::SetPaused { worker, paused } => {
                self.ask(tenant, |reply| Command::SetPaused {
                    worker,
                    paused,
                    reply,
                })
                .await?;
                Reply::Done
            }
            Call::TaskEvent(event) => Reply::Outcome(
                self.ask(tenant, |reply| Command::TaskEvent { event, reply })
                    .await?,
            ),
            Call::ReleaseSlot(task) => Reply::Outcome(
                self.ask(tenant, |reply| Command::ReleaseSlot { task, reply })
                    .await?,
            ),
            Call::RefreshTimeout { task, by_ms } => Reply::Deadline(
                self.ask(tenant, |reply| Command::RefreshTimeout {
                    task,
                    by: Duration::from_millis(by_ms),
                    reply,
                })
                .await?,
            ),
            Call::WaitRun { run, within_ms } => {
                let wait = self.ask(tenant, |reply| Command::WaitRun { run, reply });
                match tokio::time::timeout(Duration::from_millis(within_ms), wait).await {
                    Ok(snapshot) => Reply::Run(snapshot?),
                    Err(_) => Reply::StillRunning,
                }
            }
            Call::GetRun(run) => Reply::Run(
                self.ask(tenant, |reply| Command::GetRun { run, reply })
                    .await?,
            ),
            Call::Cancel { ids, filter } => Reply::Tasks(
                self.ask(tenant, |reply| Command::Cancel { ids, filter, reply })
                    .await?,
            ),
            Call::Replay { targets, stored } => Reply::Replayed(
                self.ask(tenant, |reply| Command::Replay {
                    targets,
                    stored,
                    reply,
                })
                .await?,
            ),
            Call::PutLog {
                task,
                message,
                level,
            } => {
                self.ask(tenant, |reply| Command::PutLog {
                    task,
                    message,
                    level,
                    reply,
                })
                .await?;
                Reply::Done
            }
        })
    }

    /// Runs a call that answers [`Reply::Done`].
    async fn call_done(&self, tenant: TenantId, call: Call) -> Result<()> {
        match self.call(tenant, call).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Registers a workflow version (a no-op when it equals the latest one).
    pub async fn put_workflow(
        &self,
        tenant: TenantId,
        spec: WorkflowSpec,
    ) -> Result<WorkflowVersionRecord> {
        spec.validate()?;
        let outcome = self
            .inner
            .store
            .put_workflow(tenant, spec)
            .await
            .map_err(store_error)?;
        let version = outcome.version.clone();
        self.call_done(tenant, Call::WorkflowVersion(outcome.version))
            .await?;
        Ok(version)
    }

    /// Starts runs; the ids are returned once every run is committed. All or nothing:
    /// one invalid request fails the call and starts no run.
    pub async fn trigger(
        &self,
        tenant: TenantId,
        requests: Vec<TriggerRequest>,
    ) -> Result<Vec<RunId>> {
        expect_reply!(
            self.call(tenant, Call::Trigger(requests)).await?,
            Reply::RunIds
        )
    }

    /// Records events and starts every workflow whose trigger matches each key.
    pub async fn push_events(
        &self,
        tenant: TenantId,
        events: Vec<NewEvent>,
    ) -> Result<Vec<EventRecord>> {
        expect_reply!(
            self.call(tenant, Call::PushEvents(events)).await?,
            Reply::Events
        )
    }

    pub async fn register_worker(
        &self,
        tenant: TenantId,
        registration: WorkerRegistration,
    ) -> Result<WorkerId> {
        expect_reply!(
            self.call(tenant, Call::RegisterWorker(registration))
                .await?,
            Reply::Worker
        )
    }

    /// Opens the worker's assignment stream; a second listen replaces the first. The
    /// stream ends when the worker is lost, its tenant moves to another replica, or the
    /// engine stops.
    pub async fn listen(
        &self,
        tenant: TenantId,
        worker: WorkerId,
    ) -> Result<mpsc::UnboundedReceiver<Assignment>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Some(placement) = &self.inner.placement
            && !placement.is_local(tenant).await?
        {
            placement.listen_remote(tenant, worker, sender).await?;
            return Ok(receiver);
        }
        let mailbox = self.mailbox(tenant);
        let generation = self
            .ask(tenant, |reply| Command::Listen {
                worker,
                stream: sender.clone(),
                reply,
            })
            .await?;
        // When the worker hangs up, the actor must know at once to start the grace timer.
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = sender.closed() => {
                    let _ = mailbox.send(Command::ListenClosed { worker, generation });
                }
                () = shutdown.cancelled() => {}
            }
        });
        Ok(receiver)
    }

    /// Marks the worker as not listening (the SDK's `Unsubscribe`).
    pub async fn unsubscribe(&self, tenant: TenantId, worker: WorkerId) -> Result<()> {
        self.call_done(tenant, Call::Unsubscribe(worker)).await
    }

    pub async fn heartbeat(&self, tenant: TenantId, worker: WorkerId) -> Result<()> {
        self.call_done(tenant, Call::Heartbeat(worker)).await
    }

    /// The tenant's workers with their slot usage.
    pub async fn workers(&self, tenant: TenantId) -> Result<Vec<WorkerView>> {
        expect_reply!(self.call(tenant, Call::Workers).await?, Reply::Workers)
    }

    /// One worker with its slot usage.
    pub async fn worker(&self, tenant: TenantId, worker: WorkerId) -> Result<WorkerView> {
        self.workers(tenant)
            .await?
            .into_iter()
            .find(|view| view.record.id == worker)
            .ok_or_else(|| Error::not_found(format!("worker {worker} not found")))
    }

    pub async fn set_worker_paused(
        &self,
        tenant: TenantId,
        worker: WorkerId,
        paused: bool,
    ) -> Result<()> {
        self.call_done(tenant, Call::SetPaused { worker, paused })
            .await
    }

    pub async fn task_event(&self, tenant: TenantId, event: TaskEvent) -> Result<()> {
        let task = event.task_id;
        let outcome = expect_reply!(
            self.call(tenant, Call::TaskEvent(event)).await?,
            Reply::Outcome
        )?;
        match outcome {
            Outcome::Done => Ok(()),
            // A report about a task whose run has finished is a duplicate or a late report
            // of an attempt settled otherwise: it changes nothing and is answered OK, since
            // the SDKs retry refusals (1.43.1 sends STARTED twice, the second often after
            // COMPLETED).
            Outcome::NotLive => match self.inner.store.task(tenant, task).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(Error::not_found(format!("task {task} not found"))),
                Err(error) => Err(store_error(error)),
            },
        }
    }

    /// Frees the task's slot units now; the task keeps running and stays on its worker.
    pub async fn release_slot(&self, tenant: TenantId, task: TaskId) -> Result<()> {
        let outcome = expect_reply!(
            self.call(tenant, Call::ReleaseSlot(task)).await?,
            Reply::Outcome
        )?;
        self.settle(tenant, task, outcome).await
    }

    /// Extends a running task's deadline by `by`, returning the new deadline.
    pub async fn refresh_timeout(
        &self,
        tenant: TenantId,
        task: TaskId,
        by: Duration,
    ) -> Result<Millis> {
        let by_ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let deadline = expect_reply!(
            self.call(tenant, Call::RefreshTimeout { task, by_ms })
                .await?,
            Reply::Deadline
        )?;
        match deadline {
            Some(deadline) => Ok(deadline),
            None => Err(self.missing_task(tenant, task).await),
        }
    }

    /// Resolves an answer that said "that task is not live here": finished or unknown.
    async fn settle(&self, tenant: TenantId, task: TaskId, outcome: Outcome) -> Result<()> {
        match outcome {
            Outcome::Done => Ok(()),
            Outcome::NotLive => Err(self.missing_task(tenant, task).await),
        }
    }

    async fn missing_task(&self, tenant: TenantId, task: TaskId) -> Error {
        match self.inner.store.task(tenant, task).await {
            Ok(Some(record)) => finished_task_error(&record),
            Ok(None) => Error::not_found(format!("task {task} not found")),
            Err(error) => store_error(error),
        }
    }

    /// Waits until the run is done and returns it.
    pub async fn wait_run(&self, tenant: TenantId, run: RunId) -> Result<RunSnapshot> {
        let within_ms = REMOTE_WAIT.as_millis() as u64;
        loop {
            match self.call(tenant, Call::WaitRun { run, within_ms }).await? {
                Reply::Run(Some(snapshot)) => return Ok(snapshot),
                Reply::Run(None) => return self.stored_run(tenant, run).await,
                Reply::StillRunning => continue,
                other => return Err(unexpected(other)),
            }
        }
    }

    /// The run as it is now.
    pub async fn run(&self, tenant: TenantId, run: RunId) -> Result<RunSnapshot> {
        match expect_reply!(self.call(tenant, Call::GetRun(run)).await?, Reply::Run)? {
            Some(snapshot) => Ok(snapshot),
            None => self.stored_run(tenant, run).await,
        }
    }

    async fn stored_run(&self, tenant: TenantId, run: RunId) -> Result<RunSnapshot> {
        match self
            .inner
            .store
            .run(tenant, run)
            .await
            .map_err(store_error)?
        {
            Some((run, tasks)) => Ok(RunSnapshot::stored(run, tasks)),
            None => Err(Error::not_found(format!("workflow run {run} not found"))),
        }
    }

    /// Cancels tasks: each id names a task or a whole run; the filter adds the unfinished
    /// tasks it matches. Finished tasks are left alone (a no-op, not an error); an id that
    /// names nothing is NOT_FOUND. Answers the tasks cancelled.
    pub async fn cancel_tasks(
        &self,
        tenant: TenantId,
        ids: Vec<uuid::Uuid>,
        filter: Option<TaskFilter>,
    ) -> Result<Vec<TaskId>> {
        for (index, id) in ids.iter().enumerate() {
            self.resolve(tenant, index, *id).await?;
        }
        expect_reply!(
            self.call(tenant, Call::Cancel { ids, filter }).await?,
            Reply::Tasks
        )
    }

    /// Runs finished tasks again, each as a new attempt with the same input: an id names
    /// a task (run again with its DAG descendants) or a whole run. Unfinished tasks are
    /// left alone. Answers the tasks queued again.
    pub async fn replay_tasks(
        &self,
        tenant: TenantId,
        ids: Vec<uuid::Uuid>,
    ) -> Result<Vec<TaskId>> {
        let mut targets = Vec::with_capacity(ids.len());
        for (index, id) in ids.iter().enumerate() {
            targets.push(self.resolve(tenant, index, *id).await?);
        }
        let mut stored = Vec::new();
        // A run that finished is not in the actor's memory; the actor says which it lacks,
        // and answers only after the commit that finished them, so the store has them.
        for _ in 0..3 {
            let call = Call::Replay {
                targets: targets.clone(),
                stored: std::mem::take(&mut stored),
            };
            let replayed = expect_reply!(self.call(tenant, call).await?, Reply::Replayed)?;
            if replayed.missing.is_empty() {
                return Ok(replayed.tasks);
            }
            for run in replayed.missing {
                stored.push(self.stored_run(tenant, run).await?);
            }
        }
        Err(Error::unavailable(
            "the runs to replay kept changing; try again",
        ))
    }

    /// What `externalIds[index]` names: a task or a run.
    async fn resolve(
        &self,
        tenant: TenantId,
        index: usize,
        id: uuid::Uuid,
    ) -> Result<ReplayTarget> {
        let store = &self.inner.store;
        if let Some(task) = store.task(tenant, id).await.map_err(store_error)? {
            return Ok(ReplayTarget {
                run: task.run_id,
                task: Some(task.id),
            });
        }
        if store.run(tenant, id).await.map_err(store_error)?.is_some() {
            return Ok(ReplayTarget {
                run: id,
                task: None,
            });
        }
        Err(Error::not_found(format!(
            "externalIds[{index}]: no task or run {id}"
        )))
    }

    /// The task's attempts, oldest first: worker, outcome, error and timings of each.
    pub async fn task_attempts(&self, tenant: TenantId, task: TaskId) -> Result<Vec<Attempt>> {
        let history = self.task_events(tenant, task).await?;
        Ok(attempts::from_history(&history))
    }

    /// The task's history, oldest first; NOT_FOUND for a task the tenant does not have.
    pub async fn task_events(
        &self,
        tenant: TenantId,
        task: TaskId,
    ) -> Result<Vec<adze_store::HistoryRecord>> {
        let history = self.task_history(tenant, task).await?;
        if history.is_empty()
            && self
                .inner
                .store
                .task(tenant, task)
                .await
                .map_err(store_error)?
                .is_none()
        {
            return Err(Error::not_found(format!("task {task} not found")));
        }
        Ok(history)
    }

    pub async fn put_log(
        &self,
        tenant: TenantId,
        task: TaskId,
        message: String,
        level: Option<String>,
    ) -> Result<()> {
        self.call_done(
            tenant,
            Call::PutLog {
                task,
                message,
                level,
            },
        )
        .await
    }

    /// The task's history, oldest first (assigned, started, released, …).
    pub async fn task_history(
        &self,
        tenant: TenantId,
        task: TaskId,
    ) -> Result<Vec<adze_store::HistoryRecord>> {
        self.inner
            .store
            .task_history(tenant, task)
            .await
            .map_err(store_error)
    }
}

pub(crate) fn finished_task_error(record: &TaskRecord) -> Error {
    Error::precondition(format!(
        "task {} has already finished ({}); only a task that is running can do this",
        record.id, record.status
    ))
}
