//! Runs and their tasks: creation from triggers and events, outcomes reported by
//! workers, retries (with their backoff), DAG progress, the on-failure task and run
//! completion.

use std::sync::Arc;
use std::time::Duration;

use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::{TaskSpec, check_name, parse_object};
use adze_core::{Error, Millis, Result, RunId, TaskId, duration, event_key, retry};
use adze_store::{EventRecord, HistoryRecord, LogRecord, Mutation, RunRecord};
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
            let task = TaskState::new(&run, position, spec, version.requests[position].clone());
            task_ids.push(task.record.id);
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

    /// Puts a task at the back of its action's queue and saves it as queued; its
    /// schedule timeout starts now.
    pub(crate) fn enqueue(&mut self, task_id: TaskId) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.record.status = TaskStatus::Queued;
        task.record.queued_seq = seq;
        task.record.queued_at = Some(now_millis());
        task.ready_at = None;
        self.join_queue(task_id, Duration::ZERO);
        self.save_task(task_id);
    }

    /// Adds a queued task to its action's queue, `waited` of its schedule timeout spent.
    pub(crate) fn join_queue(&mut self, task_id: TaskId, waited: Duration) {
        let action = self.action_of(task_id);
        self.queues
            .entry(action.clone())
            .or_default()
            .push_back(task_id);
        self.dirty.insert(action);
        self.start_schedule_deadline(task_id, waited);
    }

    /// Takes a queued task out of its action's queue (it is cancelled or timed out).
    pub(crate) fn leave_queue(&mut self, task_id: TaskId) {
        let action = self.action_of(task_id);
        if let Some(queue) = self.queues.get_mut(&action) {
            queue.retain(|queued| *queued != task_id);
        }
    }

    /// Saves a retry as queued but keeps it out of its queue until its backoff ends; the
    /// store keeps when, so a restart waits out only the rest.
    fn queue_after(&mut self, task_id: TaskId, delay: Duration) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.record.status = TaskStatus::Queued;
        task.record.queued_at = Some(now_millis() + delay.as_millis() as Millis);
        task.deadline = None;
        self.wait_backoff(task_id, delay);
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
        run.version
            .record
            .spec
            .task_at(task.record.position as usize)
            .expect("a task's position is in its spec")
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
        let children = run.version.dag.children.get(position);
        let ready: Vec<TaskId> = children
            .into_iter()
            .flatten()
            .filter(|&&child| {
                self.tasks[&run.tasks[child]].record.status == TaskStatus::Pending
                    && run.version.dag.parents[child].iter().all(|&parent| {
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
        let spec = self.spec_of(task_id);
        let task = &self.tasks[&task_id].record;
        if retryable && retry::may_retry(spec, task.attempt, task.retries_from) {
            let next = task.attempt + 1;
            // Counted like the retries: a replay starts the backoff over.
            let delay = retry::delay(spec, next - task.retries_from);
            let task = self.tasks.get_mut(&task_id).expect("a live task");
            task.record.attempt = next;
            task.record.error = Some(error);
            task.record.started_at = None;
            if delay.is_zero() {
                self.enqueue(task_id);
                self.history(task_id, "retrying", None);
            } else {
                self.queue_after(task_id, delay);
                self.history(
                    task_id,
                    "retrying",
                    Some(format!("after a backoff of {}", duration::format(delay))),
                );
            }
            return;
        }
        let task = self.tasks.get_mut(&task_id).expect("a live task");
        task.record.status = TaskStatus::Failed;
        task.record.error = Some(error);
        task.record.finished_at = Some(now_millis());
        let (run_id, name) = (task.record.run_id, task.record.name.clone());
        self.save_task(task_id);
        self.skip_descendants(task_id, &format!("an ancestor task failed ({name})"));
        self.finish_if_done(run_id);
    }

    /// A task ended without completing: its DAG descendants that wait for it never start.
    pub(crate) fn skip_descendants(&mut self, task_id: TaskId, why: &str) {
        let task = &self.tasks[&task_id].record;
        let run = &self.runs[&task.run_id];
        let position = task.position as usize;
        if run.version.record.spec.is_on_failure(position) {
            return;
        }
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
                child_task.record.error = Some(format!("not run: {why}"));
                child_task.record.finished_at = Some(now_millis());
                self.save_task(child);
            }
        }
    }

    /// Queues the run's on-failure task, if it has one that has not run for this
    /// failure yet (it is created on first need). Says whether it did.
    fn start_on_failure(&mut self, run_id: RunId) -> bool {
        let run = &self.runs[&run_id];
        let spec = &run.version.record.spec;
        let Some(on_failure) = &spec.on_failure else {
            return false;
        };
        let position = spec.tasks.len();
        if let Some(&existing) = run.tasks.get(position) {
            if self.tasks[&existing].record.status != TaskStatus::Pending {
                return false;
            }
            self.enqueue(existing);
            return true;
        }
        let requests = run.version.requests[position].clone();
        let task = TaskState::new(&run.record, position, on_failure, requests);
        let id = task.record.id;
        self.tasks.insert(id, task);
        self.runs
            .get_mut(&run_id)
            .expect("checked above")
            .tasks
            .push(id);
        self.enqueue(id);
        true
    }

    /// Finishes the run once every task is done: records it, answers its waiters and
    /// forgets it (the store keeps it).
    pub(crate) fn finish_if_done(&mut self, run_id: RunId) {
        let status = self.run_status(run_id);
        if !status.is_done() {
            return;
        }
        if status == RunStatus::Failed && self.start_on_failure(run_id) {
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
