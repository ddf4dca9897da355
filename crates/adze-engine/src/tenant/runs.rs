//! Runs and their tasks: creation from triggers and events, outcomes reported by
//! workers, retries, DAG progress and run completion.

use std::sync::Arc;
use std::time::Duration;

use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::{TaskSpec, check_name, parse_object};
use adze_core::{Error, Millis, Result, RunId, TaskId, duration, event_key};
use adze_store::{EventRecord, HistoryRecord, LogRecord, Mutation, RunRecord, TaskRecord};
use tokio::time::Instant;
use uuid::Uuid;

use super::timers::Timer;
use super::{Outcome, RunState, State, TaskState, Version};
use crate::clock::now_millis;
use crate::{NewEvent, TaskEvent, TaskEventKind, TriggerRequest};

/// The longest log line kept.
const MAX_LOG_LEN: usize = 10_000;

impl State {
    pub(crate) fn trigger(&mut self, requests: Vec<TriggerRequest>) -> Result<Vec<RunId>> {
        // Validate everything first: a bulk trigger starts all of its runs or none.
        let mut accepted = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let field = |name: &str| item_field("workflows", requests.len(), index, name);
            let version = self
                .latest
                .get(&request.workflow_name)
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "workflow {:?} is not registered",
                        request.workflow_name
                    ))
                })?;
            parse_object(&field("input"), &request.input)?;
            parse_object(&field("additional_metadata"), &request.additional_metadata)?;
            accepted.push(version);
        }
        Ok(requests
            .into_iter()
            .zip(accepted)
            .map(|(request, version)| {
                self.create_run(version, request.input, request.additional_metadata, None)
            })
            .collect())
    }

    pub(crate) fn push_events(&mut self, events: Vec<NewEvent>) -> Result<Vec<EventRecord>> {
        for (index, event) in events.iter().enumerate() {
            let field = |name: &str| item_field("events", events.len(), index, name);
            check_name(&field("key"), &event.key)?;
            parse_object(&field("payload"), &event.payload)?;
            parse_object(&field("additional_metadata"), &event.additional_metadata)?;
        }
        let now = now_millis();
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let record = EventRecord {
                id: Uuid::now_v7(),
                tenant_id: self.tenant,
                key: event.key,
                payload: non_empty_object(event.payload),
                additional_metadata: non_empty_object(event.additional_metadata),
                scope: event.scope,
                created_at: now,
            };
            self.batch.mutate(Mutation::InsertEvent(record.clone()));
            let triggered: Vec<Arc<Version>> = self
                .latest
                .values()
                .filter(|version| {
                    version
                        .record
                        .spec
                        .event_triggers
                        .iter()
                        .any(|pattern| event_key::matches(pattern, &record.key))
                })
                .cloned()
                .collect();
            for version in triggered {
                self.create_run(
                    version,
                    record.payload.clone(),
                    record.additional_metadata.clone(),
                    Some(record.id),
                );
            }
            records.push(record);
        }
        Ok(records)
    }

    fn create_run(
        &mut self,
        version: Arc<Version>,
        input: String,
        metadata: String,
        event: Option<Uuid>,
    ) -> RunId {
        let now = now_millis();
        let run = RunRecord {
            id: Uuid::now_v7(),
            tenant_id: self.tenant,
            workflow_version_id: version.record.id,
            input: non_empty_object(input),
            additional_metadata: non_empty_object(metadata),
            event_id: event,
            created_at: now,
            status: RunStatus::Queued,
            finished_at: None,
        };
        self.batch.mutate(Mutation::InsertRun(run.clone()));
        let mut task_ids = Vec::with_capacity(version.record.spec.tasks.len());
        for (position, spec) in version.record.spec.tasks.iter().enumerate() {
            let is_root = version.dag.parents[position].is_empty();
            let record = TaskRecord {
                id: Uuid::now_v7(),
                run_id: run.id,
                tenant_id: self.tenant,
                position: position as u32,
                name: spec.name.clone(),
                status: if is_root {
                    TaskStatus::Queued
                } else {
                    TaskStatus::Pending
                },
                attempt: 0,
                worker_id: None,
                released: false,
                queued_seq: 0,
                output: None,
                error: None,
                created_at: now,
                started_at: None,
                finished_at: None,
            };
            task_ids.push(record.id);
            let task = TaskState {
                record,
                requests: version.requests[position].clone(),
                deadline: None,
            };
            self.tasks.insert(task.record.id, task);
        }
        let run_id = run.id;
        self.runs.insert(
            run_id,
            RunState {
                record: run,
                version: version.clone(),
                tasks: task_ids.clone(),
            },
        );
        for (position, task) in task_ids.into_iter().enumerate() {
            if version.dag.parents[position].is_empty() {
                self.enqueue(task);
            } else {
                self.save_task(task);
            }
        }
        run_id
    }

    /// Puts a task at the back of its action's queue and saves it as queued.
    pub(crate) fn enqueue(&mut self, task_id: TaskId) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.record.status = TaskStatus::Queued;
        task.record.queued_seq = seq;
        let action = self.action_of(task_id);
        self.queues
            .entry(action.clone())
            .or_default()
            .push_back(task_id);
        self.dirty.insert(action);
        self.save_task(task_id);
    }

    pub(crate) fn action_of(&self, task: TaskId) -> String {
        self.spec_of(task).action.clone()
    }

    pub(crate) fn save_task(&mut self, task: TaskId) {
        if let Some(task) = self.tasks.get(&task) {
            self.batch.mutate(Mutation::SaveTask(task.record.clone()));
        }
    }

    pub(crate) fn history(&mut self, task: TaskId, kind: &str, detail: Option<String>) {
        let Some(task) = self.tasks.get(&task) else {
            return;
        };
        self.batch.mutate(Mutation::History(HistoryRecord {
            task_id: task.record.id,
            attempt: task.record.attempt,
            at: now_millis(),
            kind: kind.to_string(),
            worker_id: task.record.worker_id,
            detail,
        }));
    }

    pub(crate) fn task_event(&mut self, event: TaskEvent) -> Result<Outcome> {
        let Some(task) = self.tasks.get(&event.task_id) else {
            return Ok(Outcome::NotLive);
        };
        let record = &task.record;
        // Exactly-once recording: only the current attempt on its own worker may move the
        // task; duplicates and late reports from earlier attempts change nothing and are
        // answered OK (see `Engine::task_event`).
        let current = record.worker_id == Some(event.worker_id)
            && event
                .attempt
                .is_none_or(|attempt| attempt == record.attempt)
            && record.status.is_on_worker();
        if !current {
            return Ok(Outcome::Done);
        }
        match event.kind {
            TaskEventKind::Started => {
                if record.status == TaskStatus::Assigned {
                    let now = now_millis();
                    let task = self.tasks.get_mut(&event.task_id).expect("checked above");
                    task.record.status = TaskStatus::Running;
                    task.record.started_at = Some(now);
                    self.save_task(event.task_id);
                    self.history(event.task_id, "started", None);
                }
            }
            TaskEventKind::Completed(output) => {
                let output = if output.trim().is_empty() {
                    "null".to_string()
                } else {
                    output
                };
                // Checked, not built: the output is stored and passed on as text.
                if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&output) {
                    return Err(Error::invalid(format!(
                        "event_payload (the task's output) is not valid JSON: {error}"
                    )));
                }
                self.complete(event.task_id, output);
            }
            TaskEventKind::Failed { error, retryable } => {
                self.fail(event.task_id, error, retryable)
            }
        }
        Ok(Outcome::Done)
    }

    /// The spec of a live task.
    pub(crate) fn spec_of(&self, task: TaskId) -> &TaskSpec {
        let task = &self.tasks[&task];
        let run = &self.runs[&task.record.run_id];
        &run.version.record.spec.tasks[task.record.position as usize]
    }

    fn complete(&mut self, task_id: TaskId, output: String) {
        self.history(task_id, "completed", None);
        self.detach_from_worker(task_id);
        let task = self.tasks.get_mut(&task_id).expect("a live task");
        task.record.status = TaskStatus::Completed;
        task.record.output = Some(output);
        task.record.error = None;
        task.record.finished_at = Some(now_millis());
        let (run_id, position) = (task.record.run_id, task.record.position as usize);
        self.save_task(task_id);
        let run = &self.runs[&run_id];
        let ready: Vec<TaskId> = run.version.dag.children[position]
            .iter()
            .filter(|&&child| {
                run.version.dag.parents[child].iter().all(|&parent| {
                    self.tasks[&run.tasks[parent]].record.status == TaskStatus::Completed
                })
            })
            .map(|&child| run.tasks[child])
            .collect();
        for child in ready {
            self.enqueue(child);
        }
        self.finish_if_done(run_id);
    }

    /// Fails the current attempt: retried while its policy allows, else final, and then
    /// its DAG descendants never start.
    pub(crate) fn fail(&mut self, task_id: TaskId, error: String, retryable: bool) {
        self.history(task_id, "failed", Some(error.clone()));
        self.detach_from_worker(task_id);
        let retries = self.spec_of(task_id).retries;
        let task = self.tasks.get_mut(&task_id).expect("a live task");
        if retryable && task.record.attempt < retries {
            task.record.attempt += 1;
            task.record.error = Some(error);
            task.record.started_at = None;
            self.enqueue(task_id);
            self.history(task_id, "retrying", None);
            return;
        }
        task.record.status = TaskStatus::Failed;
        task.record.error = Some(error);
        task.record.finished_at = Some(now_millis());
        let (run_id, position) = (task.record.run_id, task.record.position as usize);
        self.save_task(task_id);
        let failed_name = self.tasks[&task_id].record.name.clone();
        let run = &self.runs[&run_id];
        let below: Vec<TaskId> = run
            .version
            .dag
            .descendants(position)
            .into_iter()
            .map(|index| run.tasks[index])
            .collect();
        for child in below {
            let child_task = self.tasks.get_mut(&child).expect("a live task");
            if child_task.record.status == TaskStatus::Pending {
                child_task.record.status = TaskStatus::Cancelled;
                child_task.record.error =
                    Some(format!("not run: an ancestor task failed ({failed_name})"));
                child_task.record.finished_at = Some(now_millis());
                self.save_task(child);
            }
        }
        self.finish_if_done(run_id);
    }

    /// Finishes the run once every task is done: records it, answers its waiters and
    /// forgets it (the store keeps it).
    fn finish_if_done(&mut self, run_id: RunId) {
        let run = &self.runs[&run_id];
        let status = RunStatus::of_tasks(run.tasks.iter().map(|id| self.tasks[id].record.status));
        if !status.is_done() {
            return;
        }
        let now = now_millis();
        self.batch.mutate(Mutation::FinishRun {
            run_id,
            status,
            finished_at: now,
        });
        let run = self.runs.get_mut(&run_id).expect("checked above");
        run.record.status = status;
        run.record.finished_at = Some(now);
        let snapshot = self.snapshot(run_id);
        for waiter in self.waiters.remove(&run_id).unwrap_or_default() {
            self.batch.reply(waiter, Ok(snapshot.clone()));
        }
        let run = self.runs.remove(&run_id).expect("checked above");
        for task in run.tasks {
            self.tasks.remove(&task);
        }
    }

    pub(crate) fn refresh_timeout(
        &mut self,
        task_id: TaskId,
        by: Duration,
    ) -> Result<Option<Millis>> {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return Ok(None);
        };
        if task.record.status.is_terminal() {
            return Err(crate::finished_task_error(&task.record));
        }
        let Some(deadline) = task.deadline.filter(|_| task.record.status.is_on_worker()) else {
            return Err(Error::precondition(format!(
                "task {task_id} is not on a worker; only a running task can refresh its timeout"
            )));
        };
        let deadline = deadline
            .checked_add(by)
            .filter(|deadline| deadline.saturating_duration_since(Instant::now()) <= duration::MAX)
            .ok_or_else(|| {
                Error::invalid("increment_timeout_by would move the deadline past a year from now")
            })?;
        task.deadline = Some(deadline);
        self.arm(Timer::Task(task_id), deadline);
        self.history(
            task_id,
            "timeout refreshed",
            Some(format!("by {}", duration::format(by))),
        );
        let remaining = deadline.saturating_duration_since(Instant::now());
        Ok(Some(now_millis() + remaining.as_millis() as Millis))
    }

    pub(crate) fn put_log(
        &mut self,
        task: TaskId,
        mut message: String,
        level: Option<String>,
    ) -> Result<()> {
        if message.len() > MAX_LOG_LEN {
            let mut cut = MAX_LOG_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        self.batch.mutate(Mutation::Log(LogRecord {
            task_id: task,
            tenant_id: self.tenant,
            at: now_millis(),
            level,
            message,
        }));
        Ok(())
    }
}

/// Names a field of one item of a call: `input` in a single call, `workflows[2].input`
/// in a bulk one.
fn item_field(list: &str, count: usize, index: usize, name: &str) -> String {
    if count == 1 {
        name.to_string()
    } else {
        format!("{list}[{index}].{name}")
    }
}

/// SDKs send an empty string for "nothing"; store the empty object instead.
fn non_empty_object(text: String) -> String {
    if text.trim().is_empty() {
        "{}".to_string()
    } else {
        text
    }
}
