//! Where a tenant's actor runs when several replicas share one database.
//!
//! Each tenant's scheduling state lives in exactly one actor, on the replica that holds
//! the tenant's lease. A call that reaches any other replica is sent to that owner as a
//! [`Call`] and its answer comes back as a [`Reply`]; both are plain data so they can
//! travel through the database. How they travel, and how leases are held, is the
//! [`Placement`]'s business (`adze-cluster` does it with PostgreSQL). `adze lite` has
//! no placement: every tenant is local.

use adze_core::{Millis, Result, RunId, TaskId, TenantId, WorkerId};
use adze_store::{EventRecord, WorkflowVersionRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::tenant::{Outcome, ReplayTarget, Replayed, RunSnapshot, WorkerView};
use crate::{Assignment, NewEvent, TaskEvent, TaskFilter, TriggerRequest, WorkerRegistration};

/// Names one running engine process among the replicas.
pub type ReplicaId = Uuid;

/// A request for a tenant's actor, as it travels between replicas.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    WorkflowVersion(WorkflowVersionRecord),
    Trigger(Vec<TriggerRequest>),
    PushEvents(Vec<NewEvent>),
    RegisterWorker(WorkerRegistration),
    /// The worker's listen stream is held by `replica`: assignments go there.
    Listen {
        worker: WorkerId,
        replica: ReplicaId,
    },
    ListenClosed {
        worker: WorkerId,
        generation: u64,
    },
    Unsubscribe(WorkerId),
    Heartbeat(WorkerId),
    Workers,
    SetPaused {
        worker: WorkerId,
        paused: bool,
    },
    TaskEvent(TaskEvent),
    ReleaseSlot(TaskId),
    RefreshTimeout {
        task: TaskId,
        by_ms: u64,
    },
    /// Waits at most `within_ms` for the run to finish, so that no call between replicas
    /// stays open for long; the caller asks again after [`Reply::StillRunning`].
    WaitRun {
        run: RunId,
        within_ms: u64,
    },
    GetRun(RunId),
    PutLog {
        task: TaskId,
        message: String,
        level: Option<String>,
    },
    /// Cancels the tasks and runs named, and the unfinished tasks the filter matches.
    Cancel {
        ids: Vec<Uuid>,
        filter: Option<TaskFilter>,
    },
    /// Runs finished tasks again; `stored` gives the runs the actor no longer holds.
    Replay {
        targets: Vec<ReplayTarget>,
        stored: Vec<RunSnapshot>,
    },
}

/// The answer to a [`Call`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Done,
    RunIds(Vec<RunId>),
    Events(Vec<EventRecord>),
    Worker(WorkerId),
    Listening(Listening),
    Workers(Vec<WorkerView>),
    Outcome(Outcome),
    Deadline(Option<Millis>),
    /// The run if the actor has it; `None` when it is not live (read it from the store).
    Run(Option<RunSnapshot>),
    StillRunning,
    /// The tasks a cancel stopped.
    Tasks(Vec<TaskId>),
    Replayed(Replayed),
}

/// The owner's side of a worker's listen stream held by another replica.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Listening {
    pub generation: u64,
    /// Names the owner's stream; its deliveries and its end carry it.
    pub stream: Uuid,
    pub owner: ReplicaId,
}

/// Decides where each tenant's actor runs and carries calls to it.
#[async_trait::async_trait]
pub trait Placement: Send + Sync + 'static {
    /// Whether this replica runs the tenant's actor now, taking its lease if it is free.
    async fn is_local(&self, tenant: TenantId) -> Result<bool>;

    /// Runs `call` on the tenant's owner and returns its answer.
    async fn forward(&self, tenant: TenantId, call: Call) -> Result<Reply>;

    /// Opens the owner's end of a stream to a worker whose listen stream is on
    /// `replica`: what is sent on it is delivered there, and its end is, too.
    fn stream_to(
        &self,
        replica: ReplicaId,
        tenant: TenantId,
        worker: WorkerId,
    ) -> (mpsc::UnboundedSender<Assignment>, Uuid);

    /// Holds a worker's listen stream on this replica while another one owns the tenant:
    /// tells the owner, delivers what it sends, and reports the stream's close.
    async fn listen_remote(
        &self,
        tenant: TenantId,
        worker: WorkerId,
        stream: mpsc::UnboundedSender<Assignment>,
    ) -> Result<()>;

    /// This replica's id.
    fn replica(&self) -> ReplicaId;
}
