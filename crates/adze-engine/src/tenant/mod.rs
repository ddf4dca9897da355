//! The tenant actor: the one owner of a tenant's scheduling state.
//!
//! It takes every command waiting in its mailbox, applies them to its state, runs one
//! scheduling pass over the queues they touched, and hands the resulting batch to its
//! committer (see [`crate::commit`]). Timers (worker liveness, task timeouts) wake it at
//! their deadline;
//! nothing polls.
//!
//! - [`runs`]: triggers, events, task outcomes, retries, DAG progress, run completion,
//!   on-failure tasks
//! - [`cancel`]: cancelling tasks and runs, by id or by filter
//! - [`replay`]: running finished tasks again
//! - [`workers`]: worker sessions, liveness, slot release
//! - [`scheduler`]: the assignment pass
//! - [`timers`]: deadlines: worker liveness, retry backoff, schedule and execution timeouts
//! - [`recovery`]: rebuilding the state from the store

mod cancel;
#[cfg(test)]
mod failure_tests;
mod recovery;
mod replay;
mod runs;
mod scheduler;
#[cfg(test)]
mod tests;
mod timers;
mod workers;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use adze_core::slots::{SlotPool, SlotUnits};
use adze_core::workflow::Dag;
use adze_core::{Millis, Result, RunId, TaskId, TenantId, WorkerId};
use adze_store::{EventRecord, RunRecord, Store, TaskRecord, WorkerRecord, WorkflowVersionRecord};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commit::{self, Batch};
use crate::{
    Assignment, EngineConfig, NewEvent, TaskEvent, TaskFilter, TriggerRequest, WorkerRegistration,
};

/// The most commands applied before a batch is handed to the committer.
const MAX_COMMANDS_PER_BATCH: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T>>;

/// What the engine handle asks of a tenant actor.
pub enum Command {
    WorkflowVersion {
        version: WorkflowVersionRecord,
        reply: Reply<()>,
    },
    Trigger {
        requests: Vec<TriggerRequest>,
        reply: Reply<Vec<RunId>>,
    },
    PushEvents {
        events: Vec<NewEvent>,
        reply: Reply<Vec<EventRecord>>,
    },
    RegisterWorker {
        registration: WorkerRegistration,
        reply: Reply<WorkerId>,
    },
    Listen {
        worker: WorkerId,
        stream: mpsc::UnboundedSender<Assignment>,
        reply: Reply<u64>,
    },
    ListenClosed {
        worker: WorkerId,
        generation: u64,
    },
    Unsubscribe {
        worker: WorkerId,
        reply: Reply<()>,
    },
    Heartbeat {
        worker: WorkerId,
        reply: Reply<()>,
    },
    SetPaused {
        worker: WorkerId,
        paused: bool,
        reply: Reply<()>,
    },
    TaskEvent {
        event: TaskEvent,
        reply: Reply<Outcome>,
    },
    ReleaseSlot {
        task: TaskId,
        reply: Reply<Outcome>,
    },
    RefreshTimeout {
        task: TaskId,
        by: Duration,
        reply: Reply<Option<Millis>>,
    },
    WaitRun {
        run: RunId,
        reply: Reply<Option<RunSnapshot>>,
    },
    GetRun {
        run: RunId,
        reply: Reply<Option<RunSnapshot>>,
    },
    PutLog {
        task: TaskId,
        message: String,
        level: Option<String>,
        reply: Reply<()>,
    },
    Workers {
        reply: Reply<Vec<WorkerView>>,
    },
    /// Cancels the unfinished tasks named (by task or run id) or matched by the filter;
    /// answers the tasks it cancelled.
    Cancel {
        ids: Vec<uuid::Uuid>,
        filter: Option<TaskFilter>,
        reply: Reply<Vec<TaskId>>,
    },
    /// Runs finished tasks again. `stored` holds runs that are not live, as the store
    /// has them; a run neither live nor given is answered in [`Replayed::missing`].
    Replay {
        targets: Vec<ReplayTarget>,
        stored: Vec<RunSnapshot>,
        reply: Reply<Replayed>,
    },
    /// From the committer: a batch of this epoch failed to commit; rebuild from the store.
    Reload {
        epoch: u64,
    },
}

impl Command {
    /// Answers the command with `error` because the state cannot be trusted right now;
    /// gives back the commands that must wait for the rebuilt state instead: a closed
    /// stream's notice, a run waiter, and a reload request.
    pub(crate) fn refuse(self, error: &adze_core::Error) -> Option<Command> {
        fn no<T>(reply: Reply<T>, error: &adze_core::Error) -> Option<Command> {
            let _ = reply.send(Err(error.clone()));
            None
        }
        match self {
            Command::WorkflowVersion { reply, .. } => no(reply, error),
            Command::Trigger { reply, .. } => no(reply, error),
            Command::PushEvents { reply, .. } => no(reply, error),
            Command::RegisterWorker { reply, .. } => no(reply, error),
            Command::Listen { reply, .. } => no(reply, error),
            Command::Unsubscribe { reply, .. } => no(reply, error),
            Command::Heartbeat { reply, .. } => no(reply, error),
            Command::SetPaused { reply, .. } => no(reply, error),
            Command::TaskEvent { reply, .. } => no(reply, error),
            Command::ReleaseSlot { reply, .. } => no(reply, error),
            Command::RefreshTimeout { reply, .. } => no(reply, error),
            Command::GetRun { reply, .. } => no(reply, error),
            Command::PutLog { reply, .. } => no(reply, error),
            Command::Workers { reply } => no(reply, error),
            Command::Cancel { reply, .. } => no(reply, error),
            Command::Replay { reply, .. } => no(reply, error),
            deferred @ (Command::ListenClosed { .. }
            | Command::WaitRun { .. }
            | Command::Reload { .. }) => Some(deferred),
        }
    }
}

/// A worker as operators see it: its capacity and what its tasks hold of it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerView {
    pub record: WorkerRecord,
    /// Units held per slot type.
    pub used: SlotUnits,
    /// Tasks that released their slot and still run on this worker.
    pub released_running: usize,
    pub last_heartbeat_at: Millis,
    pub last_listen_at: Option<Millis>,
    pub listening: bool,
}

/// How a command about a task ended: done, or the task is not live in this actor (it
/// finished with its run, or never existed); the handle tells which from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Done,
    NotLive,
}

/// A run with its tasks, as callers see it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunSnapshot {
    pub run: RunRecord,
    pub tasks: Vec<TaskRecord>,
    pub status: adze_core::state::RunStatus,
}

impl RunSnapshot {
    /// A run as the store has it: a finished run's recorded status, else the one its
    /// tasks give.
    pub fn stored(run: RunRecord, tasks: Vec<TaskRecord>) -> Self {
        let status = if run.finished_at.is_some() {
            run.status
        } else {
            adze_core::state::RunStatus::of_tasks(tasks.iter().map(|task| task.status))
        };
        RunSnapshot { run, tasks, status }
    }

    pub fn status(&self) -> adze_core::state::RunStatus {
        self.status
    }
}

/// What a replay is about: a whole run, or one task of it (and its descendants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayTarget {
    pub run: RunId,
    pub task: Option<TaskId>,
}

/// The answer to [`Command::Replay`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Replayed {
    /// The tasks queued again.
    pub tasks: Vec<TaskId>,
    /// Runs that are not live and were not given: nothing was done; ask again with them.
    pub missing: Vec<RunId>,
}

/// A workflow version with its DAG worked out once.
pub(crate) struct Version {
    pub record: WorkflowVersionRecord,
    pub dag: Dag,
    /// Each task's slot requests by position (the on-failure task last), shared by all of
    /// its tasks: a map per queued task would cost a few hundred bytes each on a large
    /// backlog.
    pub requests: Vec<Arc<SlotUnits>>,
}

pub(crate) struct RunState {
    pub record: RunRecord,
    pub version: Arc<Version>,
    /// Task ids by position in the spec.
    pub tasks: Vec<TaskId>,
}

pub(crate) struct TaskState {
    pub record: TaskRecord,
    pub requests: Arc<SlotUnits>,
    /// On a worker: when the current attempt must finish by (RefreshTimeout extends it).
    /// Queued: when it must have been assigned by (its schedule timeout).
    pub deadline: Option<Instant>,
    /// Set while a retry waits out its backoff: it joins its queue then.
    pub ready_at: Option<Instant>,
}

impl TaskState {
    /// A task as the store has it; deadlines are set when it joins a queue or a worker.
    pub(crate) fn stored(record: TaskRecord, requests: Arc<SlotUnits>) -> Self {
        TaskState {
            record,
            requests,
            deadline: None,
            ready_at: None,
        }
    }

    /// A new task of the run at `position`, pending: its first attempt, not yet queued.
    pub(crate) fn new(
        run: &RunRecord,
        position: usize,
        spec: &adze_core::workflow::TaskSpec,
        requests: Arc<SlotUnits>,
    ) -> Self {
        let record = TaskRecord {
            id: uuid::Uuid::now_v7(),
            run_id: run.id,
            tenant_id: run.tenant_id,
            position: position as u32,
            name: spec.name.clone(),
            status: adze_core::state::TaskStatus::Pending,
            attempt: 0,
            worker_id: None,
            released: false,
            queued_seq: 0,
            output: None,
            error: None,
            created_at: crate::clock::now_millis(),
            started_at: None,
            finished_at: None,
            queued_at: None,
            retries_from: 0,
        };
        TaskState::stored(record, requests)
    }
}

pub(crate) struct WorkerState {
    pub record: WorkerRecord,
    pub pool: SlotPool,
    /// The open listen stream, if any, and its generation.
    pub stream: Option<(u64, mpsc::UnboundedSender<Assignment>)>,
    pub heartbeat_deadline: Instant,
    /// Set while the worker has no listen stream: lost if it has none by then.
    pub listen_deadline: Option<Instant>,
    /// Tasks bound to this worker (assigned or running, released or not).
    pub tasks: HashSet<TaskId>,
    /// Wall-clock times, for display only; deadlines use the instants above.
    pub last_heartbeat_at: Millis,
    pub last_listen_at: Option<Millis>,
}

/// The actor's state.
pub(crate) struct State {
    pub tenant: TenantId,
    pub config: EngineConfig,
    pub versions: HashMap<uuid::Uuid, Arc<Version>>,
    /// The latest version of each workflow, by name.
    pub latest: HashMap<String, Arc<Version>>,
    pub runs: HashMap<RunId, RunState>,
    pub tasks: HashMap<TaskId, TaskState>,
    /// Queued tasks per action, first in first out.
    pub queues: HashMap<String, VecDeque<TaskId>>,
    pub workers: HashMap<WorkerId, WorkerState>,
    pub waiters: HashMap<RunId, Vec<Reply<Option<RunSnapshot>>>>,
    /// Actions whose queue may now assign something.
    pub dirty: HashSet<String>,
    pub next_seq: i64,
    pub next_generation: u64,
    pub timers: BinaryHeap<Reverse<(Instant, timers::Timer)>>,
    /// When each queue's schedule timeouts are next checked (its armed timer).
    pub schedule_checks: HashMap<String, Instant>,
    pub batch: Batch,
    /// Counts reloads; batches carry it so the committer can drop those decided on a state
    /// that a failed commit has made wrong.
    pub epoch: u64,
    /// Set when the committer asked for a reload of the current epoch.
    pub reload: bool,
}

/// Starts the actor of `tenant` and returns its mailbox; `fence` guards its commits.
pub fn spawn(
    tenant: TenantId,
    store: Arc<dyn Store>,
    config: EngineConfig,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
    fence: Option<adze_store::Mutation>,
) -> mpsc::UnboundedSender<Command> {
    let (mailbox, commands) = mpsc::unbounded_channel();
    let (batches, committer_input) = mpsc::unbounded_channel();
    tasks.spawn(commit::run(
        store.clone(),
        committer_input,
        mailbox.clone(),
        fence,
    ));
    tasks.spawn(async move {
        let state = match recovery::load(tenant, store.as_ref(), config).await {
            Ok(state) => state,
            Err(error) => {
                tracing::error!(%tenant, %error, "tenant could not be recovered");
                return;
            }
        };
        run(state, store, commands, batches, shutdown).await;
    });
    mailbox
}

async fn run(
    mut state: State,
    store: Arc<dyn Store>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    batches: mpsc::UnboundedSender<Batch>,
    shutdown: CancellationToken,
) {
    loop {
        let next_timer = state.timers.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                state.handle(command);
                let mut applied = 1;
                while applied < MAX_COMMANDS_PER_BATCH {
                    let Ok(command) = commands.try_recv() else { break };
                    state.handle(command);
                    applied += 1;
                }
            }
            () = sleep_until(next_timer) => state.fire_timers(Instant::now()),
            () = shutdown.cancelled() => break,
        }
        if std::mem::take(&mut state.reload) {
            // What this turn decided rests on the state being thrown away.
            std::mem::take(&mut state.batch).fail(commit::reloading());
            match recovery::reload(state, store.as_ref(), &mut commands, &shutdown).await {
                Some(reloaded) => state = reloaded,
                // Stopped during an outage: nothing decided is pending, nothing to commit.
                None => return,
            }
        }
        state.schedule();
        if !state.batch.is_empty() {
            let mut batch = std::mem::take(&mut state.batch);
            batch.epoch = state.epoch;
            if batches.send(batch).is_err() {
                break;
            }
        }
    }
    // Pending commits still complete: the committer drains its channel before it stops.
    if !state.batch.is_empty() {
        let _ = batches.send(std::mem::take(&mut state.batch));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl State {
    pub(crate) fn new(tenant: TenantId, config: EngineConfig) -> Self {
        State {
            tenant,
            config,
            versions: HashMap::new(),
            latest: HashMap::new(),
            runs: HashMap::new(),
            tasks: HashMap::new(),
            queues: HashMap::new(),
            workers: HashMap::new(),
            waiters: HashMap::new(),
            dirty: HashSet::new(),
            next_seq: 0,
            next_generation: 0,
            timers: BinaryHeap::new(),
            schedule_checks: HashMap::new(),
            batch: Batch::default(),
            epoch: 0,
            reload: false,
        }
    }

    pub(crate) fn handle(&mut self, command: Command) {
        match command {
            Command::WorkflowVersion { version, reply } => {
                self.add_version(version);
                self.batch.reply(reply, Ok(()));
            }
            Command::Trigger { requests, reply } => {
                let result = self.trigger(requests);
                self.batch.reply(reply, result);
            }
            Command::PushEvents { events, reply } => {
                let result = self.push_events(events);
                self.batch.reply(reply, result);
            }
            Command::RegisterWorker {
                registration,
                reply,
            } => {
                let result = self.register_worker(registration);
                self.batch.reply(reply, result);
            }
            Command::Listen {
                worker,
                stream,
                reply,
            } => {
                let result = self.listen(worker, stream);
                self.batch.reply(reply, result);
            }
            Command::ListenClosed { worker, generation } => self.listen_closed(worker, generation),
            Command::Unsubscribe { worker, reply } => {
                let result = self.unsubscribe(worker);
                self.batch.reply(reply, result);
            }
            Command::Heartbeat { worker, reply } => {
                let result = self.heartbeat(worker);
                self.batch.reply(reply, result);
            }
            Command::SetPaused {
                worker,
                paused,
                reply,
            } => {
                let result = self.set_paused(worker, paused);
                self.batch.reply(reply, result);
            }
            Command::TaskEvent { event, reply } => {
                let result = self.task_event(event);
                self.batch.reply(reply, result);
            }
            Command::ReleaseSlot { task, reply } => {
                let result = self.release_slot(task);
                self.batch.reply(reply, result);
            }
            Command::RefreshTimeout { task, by, reply } => {
                let result = self.refresh_timeout(task, by);
                self.batch.reply(reply, result);
            }
            Command::WaitRun { run, reply } => {
                if self.runs.contains_key(&run) {
                    // Waiters from other replicas give up and ask again; drop the ones gone.
                    let waiters = self.waiters.entry(run).or_default();
                    waiters.retain(|waiter| !waiter.is_closed());
                    waiters.push(reply);
                } else {
                    self.batch.reply(reply, Ok(None));
                }
            }
            Command::GetRun { run, reply } => {
                let snapshot = self.snapshot(run);
                self.batch.reply(reply, Ok(snapshot));
            }
            Command::Reload { epoch } => self.reload |= epoch == self.epoch,
            Command::Workers { reply } => {
                let workers = self
                    .workers
                    .values()
                    .map(|worker| self.worker_view(worker))
                    .collect();
                self.batch.reply(reply, Ok(workers));
            }
            Command::Cancel { ids, filter, reply } => {
                let cancelled = self.cancel(&ids, filter.as_ref());
                self.batch.reply(reply, Ok(cancelled));
            }
            Command::Replay {
                targets,
                stored,
                reply,
            } => {
                let replayed = self.replay(&targets, stored);
                self.batch.reply(reply, Ok(replayed));
            }
            Command::PutLog {
                task,
                message,
                level,
                reply,
            } => {
                let result = self.put_log(task, message, level);
                self.batch.reply(reply, result);
            }
        }
    }

    fn add_version(&mut self, record: WorkflowVersionRecord) {
        if self.versions.contains_key(&record.id) {
            return;
        }
        let Ok(dag) = record.spec.validate() else {
            tracing::error!(version = %record.id, "stored workflow version is not a valid DAG");
            return;
        };
        let requests = record
            .spec
            .tasks
            .iter()
            .chain(record.spec.on_failure.as_ref())
            .map(|task| Arc::new(task.slot_requests.clone()))
            .collect();
        let version = Arc::new(Version {
            record,
            dag,
            requests,
        });
        let newer = self
            .latest
            .get(&version.record.spec.name)
            .is_none_or(|current| current.record.number < version.record.number);
        if newer {
            self.latest
                .insert(version.record.spec.name.clone(), version.clone());
        }
        self.versions.insert(version.record.id, version);
    }

    fn worker_view(&self, worker: &WorkerState) -> WorkerView {
        let used = worker
            .pool
            .capacity()
            .keys()
            .map(|slot_type| (slot_type.clone(), worker.pool.used_units(slot_type)))
            .collect();
        let released_running = worker
            .tasks
            .iter()
            .filter(|task| {
                self.tasks
                    .get(task)
                    .is_some_and(|task| task.record.released)
            })
            .count();
        WorkerView {
            record: worker.record.clone(),
            used,
            released_running,
            last_heartbeat_at: worker.last_heartbeat_at,
            last_listen_at: worker.last_listen_at,
            listening: worker.stream.is_some(),
        }
    }

    pub(crate) fn snapshot(&self, run: RunId) -> Option<RunSnapshot> {
        let state = self.runs.get(&run)?;
        Some(RunSnapshot {
            run: state.record.clone(),
            tasks: state
                .tasks
                .iter()
                .filter_map(|id| self.tasks.get(id))
                .map(|task| task.record.clone())
                .collect(),
            status: self.run_status(run),
        })
    }

    /// The run's state from its tasks; the on-failure task keeps it open, not failed.
    pub(crate) fn run_status(&self, run: RunId) -> adze_core::state::RunStatus {
        let run = &self.runs[&run];
        let spec = &run.version.record.spec;
        let status_at = |position: usize| {
            run.tasks
                .get(position)
                .and_then(|id| self.tasks.get(id))
                .map(|task| task.record.status)
        };
        adze_core::state::RunStatus::of_run(
            (0..spec.tasks.len()).filter_map(status_at),
            status_at(spec.tasks.len()),
        )
    }
}
