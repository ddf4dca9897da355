//! One attempt of one task on this worker: take the local slot units, report STARTED,
//! run the body (catching panics), give the units back, report the outcome.

use std::sync::Arc;
use std::time::Duration;

use adze_proto::v0::{AssignedAction, StepActionEvent, StepActionEventType};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{ActionEntry, CANCEL_GRACE, Running};
use crate::connection::Connection;
use crate::context::{Context, RunInfo};
use crate::error;
use crate::task::TaskError;
use crate::worker::slots::LocalSlots;

/// How often an outcome report is tried before giving up (the engine then times the
/// attempt out and retries it by policy).
const REPORT_ATTEMPTS: u32 = 6;

pub(crate) struct Execution {
    pub(crate) connection: Connection,
    pub(crate) worker_id: String,
    pub(crate) entry: Option<Arc<ActionEntry>>,
    pub(crate) slots: LocalSlots,
    pub(crate) running: Running,
    pub(crate) cancel: CancellationToken,
}

/// The part of the action payload a task uses.
#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    input: Value,
    #[serde(default)]
    parents: Map<String, Value>,
}

enum Outcome {
    Completed(Value),
    Failed(TaskError),
}

impl Execution {
    pub(crate) async fn run(self, action: AssignedAction) {
        let key = (action.task_run_external_id.clone(), action.retry_count);
        tracing::debug!(task = %action.task_name, task_id = %action.task_run_external_id, "rx: start step run");
        if let Some(outcome) = self.attempt(&action).await {
            self.report(&action, outcome).await;
        }
        self.running.finish(&key);
    }

    /// None when the attempt was cancelled: the engine has already settled it.
    async fn attempt(&self, action: &AssignedAction) -> Option<Outcome> {
        let Some(entry) = self.entry.clone() else {
            return Some(Outcome::Failed(TaskError::non_retryable(format!(
                "this worker has no task for action {:?}",
                action.action_id
            ))));
        };
        let payload: Payload = match serde_json::from_str(&action.action_payload) {
            Ok(payload) => payload,
            Err(error) => {
                return Some(Outcome::Failed(TaskError::non_retryable(format!(
                    "the action payload is not the expected JSON: {error}"
                ))));
            }
        };
        let permit = self.slots.acquire(&entry.slot_units).await;
        self.send(
            action,
            StepActionEventType::StepEventTypeStarted,
            String::new(),
            None,
        )
        .await;
        let run = RunInfo {
            workflow_run_id: action.workflow_run_id.clone(),
            task_run_id: action.task_run_external_id.clone(),
            task_name: action.task_name.clone(),
            retry_count: u32::try_from(action.retry_count).unwrap_or(0),
            additional_metadata: action
                .additional_metadata
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_else(|| Value::Object(Map::new())),
        };
        let ctx = Context::new(
            run,
            payload.parents,
            self.cancel.clone(),
            self.connection.clone(),
            permit,
        );
        // Its own task, so a panic in the body fails the attempt instead of the worker.
        let mut body = AbortOnDrop(tokio::spawn((entry.handler)(payload.input, ctx.clone())));
        let joined = tokio::select! {
            joined = &mut body.0 => Some(joined),
            _ = self.cancel.cancelled() => None,
        };
        let joined = match joined {
            Some(joined) => joined,
            None => {
                tracing::info!(task_id = %action.task_run_external_id, "task cancelled");
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut body.0).await;
                ctx.finish().await;
                return None;
            }
        };
        ctx.finish().await;
        Some(match joined {
            Ok(Ok(output)) => Outcome::Completed(output),
            Ok(Err(error)) => Outcome::Failed(error),
            Err(error) => Outcome::Failed(TaskError::new(format!(
                "the task panicked: {}",
                panic_message(error)
            ))),
        })
    }

    async fn report(&self, action: &AssignedAction, outcome: Outcome) {
        match outcome {
            Outcome::Completed(output) => {
                self.send(
                    action,
                    StepActionEventType::StepEventTypeCompleted,
                    output.to_string(),
                    None,
                )
                .await
            }
            Outcome::Failed(error) => {
                tracing::info!(task_id = %action.task_run_external_id, error = error.message(), "task failed");
                self.send(
                    action,
                    StepActionEventType::StepEventTypeFailed,
                    error.message().to_string(),
                    Some(!error.is_retryable()),
                )
                .await
            }
        }
    }

    /// Retries transient failures: a lost report would leave the task to its timeout.
    async fn send(
        &self,
        action: &AssignedAction,
        event_type: StepActionEventType,
        payload: String,
        should_not_retry: Option<bool>,
    ) {
        let event = StepActionEvent {
            worker_id: self.worker_id.clone(),
            job_id: action.job_id.clone(),
            job_run_id: action.job_run_id.clone(),
            task_id: action.task_id.clone(),
            task_run_external_id: action.task_run_external_id.clone(),
            action_id: action.action_id.clone(),
            event_timestamp: Some(std::time::SystemTime::now().into()),
            event_type: event_type as i32,
            event_payload: payload,
            retry_count: Some(action.retry_count),
            should_not_retry,
            retry_after_ms: None,
        };
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=REPORT_ATTEMPTS {
            match self
                .connection
                .dispatcher()
                .send_step_action_event(event.clone())
                .await
            {
                Ok(_) => return,
                Err(status) if error::is_transient(&status) && attempt < REPORT_ATTEMPTS => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(status) => {
                    tracing::warn!(
                        task_id = %action.task_run_external_id,
                        event = ?event_type,
                        code = ?status.code(),
                        message = status.message(),
                        "the engine did not take a step event"
                    );
                    return;
                }
            }
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-text panic".into()),
        Err(error) => error.to_string(),
    }
}
