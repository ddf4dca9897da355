//! Rows as the engine sees them, the same for every backend.

use adze_core::slots::SlotUnits;
use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::WorkflowSpec;
use adze_core::{Millis, RunId, TaskId, TenantId, WorkerId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A write, applied with others in one transaction by [`crate::Store::commit`].
#[derive(Debug, Clone)]
pub enum Mutation {
    InsertToken(TokenRecord),
    RevokeToken {
        token_id: Uuid,
        at: Millis,
    },
    InsertEvent(EventRecord),
    InsertRun(RunRecord),
    /// Inserts or replaces a task row: the engine always writes the whole task.
    SaveTask(TaskRecord),
    FinishRun {
        run_id: RunId,
        status: RunStatus,
        finished_at: Millis,
    },
    /// Makes a finished run unfinished again (a replay): recovery loads it again.
    ReopenRun {
        run_id: RunId,
    },
    History(HistoryRecord),
    SaveWorker(WorkerRecord),
    DeleteWorker(WorkerId),
    Log(LogRecord),
    /// Fails the commit unless `owner` holds a live lease on the tenant: replicas on one
    /// database put it first in every commit, so a replica that lost a tenant cannot
    /// write for it any more. A single-process store has nothing to fence and ignores it.
    Fence {
        tenant_id: TenantId,
        owner: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowVersionRecord {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub tenant_id: TenantId,
    /// 1 for the first version of a workflow, then counting up.
    pub number: i64,
    pub spec: WorkflowSpec,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PutWorkflowOutcome {
    pub version: WorkflowVersionRecord,
    /// False when the spec equalled the latest version and nothing was written.
    pub created: bool,
}

impl PutWorkflowOutcome {
    /// What registering `spec` comes to, given the workflow's latest version: that version
    /// again if the spec is unchanged, else the next one, which the backend then stores.
    pub(crate) fn after(
        latest: Option<WorkflowVersionRecord>,
        tenant: TenantId,
        spec: WorkflowSpec,
    ) -> Self {
        match latest {
            Some(latest) if latest.spec == spec => Self {
                version: latest,
                created: false,
            },
            latest => Self {
                version: WorkflowVersionRecord {
                    id: Uuid::now_v7(),
                    workflow_id: latest.as_ref().map_or_else(Uuid::now_v7, |v| v.workflow_id),
                    tenant_id: tenant,
                    number: latest.as_ref().map_or(1, |v| v.number + 1),
                    created_at: now_millis(),
                    spec,
                },
                created: true,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub key: String,
    pub payload: String,
    pub additional_metadata: String,
    pub scope: Option<String>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub tenant_id: TenantId,
    pub workflow_version_id: Uuid,
    /// The run's input, a JSON object.
    pub input: String,
    /// JSON object of the caller's metadata.
    pub additional_metadata: String,
    /// The event that started it, if one did.
    pub event_id: Option<Uuid>,
    pub created_at: Millis,
    pub status: RunStatus,
    pub finished_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: TaskId,
    pub run_id: RunId,
    pub tenant_id: TenantId,
    /// Index of the task in its workflow version's spec.
    pub position: u32,
    pub name: String,
    pub status: TaskStatus,
    /// 0 for the first attempt: the `retry_count` the worker sees.
    pub attempt: u32,
    pub worker_id: Option<WorkerId>,
    /// Whether the current attempt released its slot.
    pub released: bool,
    /// Orders a queue: lower goes first. Recovery rebuilds queues from it.
    pub queued_seq: i64,
    /// The output JSON of a completed task.
    pub output: Option<String>,
    pub error: Option<String>,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// When the current attempt may first be assigned: when it was queued, or when the
    /// backoff of a retry ends. The schedule timeout counts from it.
    pub queued_at: Option<Millis>,
    /// The attempt the retry policy counts from: 0, or the attempt a replay started.
    pub retries_from: u32,
}

/// One line of a task's history: assigned, started, released, completed, failed, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub task_id: TaskId,
    pub attempt: u32,
    pub at: Millis,
    pub kind: String,
    pub worker_id: Option<WorkerId>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub id: WorkerId,
    pub tenant_id: TenantId,
    pub name: String,
    pub actions: Vec<String>,
    pub capacity: SlotUnits,
    pub paused: bool,
    pub registered_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub task_id: TaskId,
    pub tenant_id: TenantId,
    pub at: Millis,
    pub level: Option<String>,
    pub message: String,
}

/// What recovery needs of a tenant.
#[derive(Debug, Clone, Default)]
pub struct TenantSnapshot {
    pub runs: Vec<RunRecord>,
    pub tasks: Vec<TaskRecord>,
    pub workers: Vec<WorkerRecord>,
    pub workflows: Vec<WorkflowVersionRecord>,
}

/// Run statuses as stored.
pub fn run_status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

pub fn parse_run_status(text: &str) -> Option<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .find(|status| run_status_name(*status) == text)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialize to JSON")
}

/// Parses a JSON document the store wrote; failing means the row is not what Adze wrote.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> crate::Result<T> {
    serde_json::from_str(text).map_err(|error| crate::StoreError::Corrupt(error.to_string()))
}

pub(crate) fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
