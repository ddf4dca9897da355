//! What a running task sees of its run and can ask of the engine: parent outputs,
//! cancellation, releasing its slot, more time, logs.

use std::sync::Arc;
use std::time::Duration;

use adze_proto::v0::{PutLogRequest, RefreshTimeoutRequest, ReleaseSlotRequest};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::task::{TaskHandle, duration_text};
use crate::worker::slots::SlotPermit;

/// The handle a task gets with its input. Cloning it is cheap; clones share state.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    run: RunInfo,
    parents: Map<String, Value>,
    cancel: CancellationToken,
    connection: Connection,
    slot: Mutex<SlotState>,
}

/// Which run and attempt a task belongs to.
pub(crate) struct RunInfo {
    pub(crate) workflow_run_id: String,
    pub(crate) task_run_id: String,
    pub(crate) task_name: String,
    pub(crate) retry_count: u32,
    pub(crate) additional_metadata: Value,
}

enum SlotState {
    /// Still counted by the engine and by the worker's local limit.
    Held(Option<SlotPermit>),
    Released,
}

impl Context {
    pub(crate) fn new(
        run: RunInfo,
        parents: Map<String, Value>,
        cancel: CancellationToken,
        connection: Connection,
        permit: SlotPermit,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                run,
                parents,
                cancel,
                connection,
                slot: Mutex::new(SlotState::Held(Some(permit))),
            }),
        }
    }

    /// The output of a parent task, typed by its handle.
    pub fn parent_output<T: DeserializeOwned>(&self, parent: &TaskHandle<T>) -> Result<T> {
        self.parent_output_named(parent.name())
    }

    /// The output of the parent task named `name`, for workflows declared elsewhere.
    pub fn parent_output_named<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let output = self.inner.parents.get(name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "task {:?} has no parent named {name:?} (its parents: {:?})",
                self.inner.run.task_name,
                self.inner.parents.keys().collect::<Vec<_>>()
            ))
        })?;
        serde_json::from_value(output.clone())
            .map_err(|error| Error::json(format!("the output of parent task {name:?}"), error))
    }

    /// Gives the task's slot back to the worker while the task keeps running: the engine
    /// may start the next task on it at once, and this worker's own concurrency limit no
    /// longer counts this task. Calling it again does nothing.
    ///
    /// The task stays bound to its worker: its timeout and cancellation still apply.
    pub async fn release_slot(&self) -> Result<()> {
        let mut slot = self.inner.slot.lock().await;
        if let SlotState::Held(permit) = &mut *slot {
            self.inner
                .connection
                .dispatcher()
                .release_slot(ReleaseSlotRequest {
                    task_run_external_id: self.inner.run.task_run_id.clone(),
                })
                .await?;
            // Only once the engine has freed the slot does the local limit free it too:
            // the other order would let a second task in that the engine cannot place.
            drop(permit.take());
            *slot = SlotState::Released;
        }
        Ok(())
    }

    /// Whether the task was told to stop (a timeout, a cancel, the worker shutting down).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Completes when the task is told to stop; select on it next to long work.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// The token behind [`cancelled`](Self::cancelled), to hand to other code.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// Moves this attempt's execution deadline `by` further out.
    pub async fn refresh_timeout(&self, by: Duration) -> Result<()> {
        self.inner
            .connection
            .dispatcher()
            .refresh_timeout(RefreshTimeoutRequest {
                task_run_external_id: self.inner.run.task_run_id.clone(),
                increment_timeout_by: duration_text(by),
            })
            .await?;
        Ok(())
    }

    /// Appends a line to the task's log on the engine.
    pub async fn log(&self, message: impl Into<String>) -> Result<()> {
        self.inner
            .connection
            .events()
            .put_log(PutLogRequest {
                task_run_external_id: self.inner.run.task_run_id.clone(),
                created_at: Some(std::time::SystemTime::now().into()),
                message: message.into(),
                level: Some("INFO".into()),
                metadata: "{}".into(),
                task_retry_count: i32::try_from(self.inner.run.retry_count).ok(),
            })
            .await?;
        Ok(())
    }

    /// How many earlier attempts of this task failed (0 on the first attempt).
    pub fn retry_count(&self) -> u32 {
        self.inner.run.retry_count
    }

    /// The id of the run this task belongs to.
    pub fn workflow_run_id(&self) -> &str {
        &self.inner.run.workflow_run_id
    }

    /// The id of this task within its run (the same across its attempts).
    pub fn task_run_id(&self) -> &str {
        &self.inner.run.task_run_id
    }

    /// The task's name within its workflow.
    pub fn task_name(&self) -> &str {
        &self.inner.run.task_name
    }

    /// The metadata the run was triggered with (a JSON object, empty if none).
    pub fn additional_metadata(&self) -> &Value {
        &self.inner.run.additional_metadata
    }

    /// Called by the worker when the task's body has returned: the local units are given
    /// back before the outcome is reported, so the engine's next assignment finds them.
    pub(crate) async fn finish(&self) {
        let mut slot = self.inner.slot.lock().await;
        if let SlotState::Held(permit) = &mut *slot {
            drop(permit.take());
        }
    }
}
