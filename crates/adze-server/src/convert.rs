//! Wire messages to core types and back. Everything a client sends is validated here or
//! in the core, and a refusal names the field.

use std::collections::BTreeMap;
use std::time::Duration;

use adze_core::slots::requests_from_spec;
use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::{TaskSpec, WorkflowSpec};
use adze_core::{Error, Millis, Result};
use adze_engine::tenant::RunSnapshot;
use adze_engine::{TaskFilter, TriggerRequest};
use adze_proto::{v0, v1};
use prost_types::Timestamp;
use uuid::Uuid;

/// The execution timeout a task gets when its spec names none (Hatchet's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The schedule timeout (queued to assigned) a task gets when its spec names none.
const DEFAULT_SCHEDULE_TIMEOUT: Duration = Duration::from_secs(300);

pub fn uuid(field: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim())
        .map_err(|_| Error::invalid(format!("{field} must be a UUID, got {text:?}")))
}

pub fn duration(field: &str, text: &str, default: Duration) -> Result<Duration> {
    if text.trim().is_empty() {
        return Ok(default);
    }
    adze_core::duration::parse(text)
        .map_err(|problem| Error::invalid(format!("{field}: {problem}")))
}

pub fn timestamp(millis: Millis) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Refuses a feature the request uses that Adze does not implement yet, rather than
/// silently ignoring it.
fn unsupported(used: bool, what: &str) -> Result<()> {
    if used {
        return Err(Error::invalid(format!(
            "{what} not supported by this engine yet"
        )));
    }
    Ok(())
}

/// The parts of a task that both registration messages carry.
struct TaskFields<'a> {
    workflow: &'a str,
    name: &'a str,
    action: &'a str,
    timeout: &'a str,
    schedule_timeout: &'a str,
    parents: &'a [String],
    retries: i32,
    backoff_factor: Option<f32>,
    backoff_max_seconds: Option<i32>,
    slot_requests: &'a BTreeMap<String, i32>,
    is_durable: bool,
}

fn task_spec(fields: TaskFields<'_>) -> Result<TaskSpec> {
    let name = fields.name;
    let field = |what: &str| format!("workflow {:?} task {name:?} {what}", fields.workflow);
    let retries = u32::try_from(fields.retries).map_err(|_| {
        Error::invalid(format!(
            "{} must not be negative, got {}",
            field("retries"),
            fields.retries
        ))
    })?;
    if let Some(factor) = fields.backoff_factor
        && !(factor.is_finite() && factor >= 1.0)
    {
        return Err(Error::invalid(format!(
            "{} must be at least 1, got {factor}",
            field("backoff_factor")
        )));
    }
    let backoff_max_seconds = fields
        .backoff_max_seconds
        .map(|seconds| {
            u32::try_from(seconds).map_err(|_| {
                Error::invalid(format!(
                    "{} must not be negative",
                    field("backoff_max_seconds")
                ))
            })
        })
        .transpose()?;
    Ok(TaskSpec {
        name: name.to_string(),
        action: fields.action.to_string(),
        parents: fields.parents.to_vec(),
        retries,
        timeout_ms: duration(&field("timeout"), fields.timeout, DEFAULT_TIMEOUT)?.as_millis()
            as u64,
        schedule_timeout_ms: duration(
            &field("schedule_timeout"),
            fields.schedule_timeout,
            DEFAULT_SCHEDULE_TIMEOUT,
        )?
        .as_millis() as u64,
        backoff_factor: fields.backoff_factor.map(f64::from),
        backoff_max_seconds,
        slot_requests: requests_from_spec(name, fields.slot_requests, fields.is_durable)?,
        is_durable: fields.is_durable,
    })
}

/// A v1 registration (hatchet-sdk 1.x).
pub fn workflow_from_v1(request: v1::CreateWorkflowVersionRequest) -> Result<WorkflowSpec> {
    let name = request.name.as_str();
    unsupported(!request.cron_triggers.is_empty(), "cron_triggers are")?;
    unsupported(
        request.concurrency.is_some() || !request.concurrency_arr.is_empty(),
        "workflow concurrency limits are",
    )?;
    unsupported(!request.default_filters.is_empty(), "default_filters are")?;
    unsupported(request.idempotency.is_some(), "idempotency is")?;
    let v1_task = |task: &v1::CreateTaskOpts| {
        let what = |feature: &str| format!("task {:?}: {feature}", task.readable_id);
        unsupported(!task.rate_limits.is_empty(), &what("rate_limits are"))?;
        unsupported(!task.worker_labels.is_empty(), &what("worker_labels are"))?;
        unsupported(
            !task.concurrency.is_empty(),
            &what("concurrency limits are"),
        )?;
        unsupported(task.batch.is_some(), &what("batch tasks are"))?;
        let conditions = task.conditions.as_ref().is_some_and(|conditions| {
            !(conditions.parent_override_conditions.is_empty()
                && conditions.sleep_conditions.is_empty()
                && conditions.user_event_conditions.is_empty())
        });
        unsupported(
            conditions,
            &what("wait_for / skip_if / cancel_if conditions are"),
        )?;
        task_spec(TaskFields {
            workflow: name,
            name: &task.readable_id,
            action: &task.action,
            timeout: &task.timeout,
            schedule_timeout: task.schedule_timeout.as_deref().unwrap_or_default(),
            parents: &task.parents,
            retries: task.retries,
            backoff_factor: task.backoff_factor,
            backoff_max_seconds: task.backoff_max_seconds,
            slot_requests: &task
                .slot_requests
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            is_durable: task.is_durable,
        })
    };
    let tasks = request
        .tasks
        .iter()
        .map(v1_task)
        .collect::<Result<Vec<_>>>()?;
    let on_failure = request.on_failure_task.as_ref().map(v1_task).transpose()?;
    Ok(WorkflowSpec {
        name: request.name,
        description: request.description,
        version: request.version,
        event_triggers: request.event_triggers,
        tasks,
        on_failure,
    })
}

/// A v0 registration (hatchet-sdk 0.x: one job of steps).
pub fn workflow_from_v0(request: v0::PutWorkflowRequest) -> Result<WorkflowSpec> {
    let opts = request
        .opts
        .ok_or_else(|| Error::invalid("opts must be set"))?;
    let name = opts.name.as_str();
    unsupported(!opts.cron_triggers.is_empty(), "cron_triggers are")?;
    unsupported(
        !opts.scheduled_triggers.is_empty(),
        "scheduled_triggers are",
    )?;
    unsupported(
        opts.concurrency.is_some(),
        "workflow concurrency limits are",
    )?;
    unsupported(opts.on_failure_job.is_some(), "on_failure_job is")?;
    if opts.jobs.len() != 1 {
        return Err(Error::invalid(format!(
            "workflow {name:?} has {} jobs; exactly one is supported",
            opts.jobs.len()
        )));
    }
    let schedule_timeout = opts.schedule_timeout.as_deref().unwrap_or_default();
    let no_requests = BTreeMap::new();
    let tasks = opts.jobs[0]
        .steps
        .iter()
        .map(|step| {
            let what = |feature: &str| format!("step {:?}: {feature}", step.readable_id);
            unsupported(!step.rate_limits.is_empty(), &what("rate_limits are"))?;
            unsupported(!step.worker_labels.is_empty(), &what("worker_labels are"))?;
            task_spec(TaskFields {
                workflow: name,
                name: &step.readable_id,
                action: &step.action,
                timeout: &step.timeout,
                schedule_timeout,
                parents: &step.parents,
                retries: step.retries,
                backoff_factor: step.backoff_factor,
                backoff_max_seconds: step.backoff_max_seconds,
                slot_requests: &no_requests,
                is_durable: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(WorkflowSpec {
        name: opts.name,
        description: opts.description,
        version: opts.version,
        event_triggers: opts.event_triggers,
        tasks,
        on_failure: None,
    })
}

pub fn trigger(request: v1::TriggerWorkflowRequest) -> Result<TriggerRequest> {
    unsupported(
        !request.desired_worker_labels.is_empty(),
        "desired_worker_labels are",
    )?;
    Ok(TriggerRequest {
        workflow_name: request.name,
        input: request.input,
        additional_metadata: request.additional_metadata.unwrap_or_default(),
    })
}

/// A bulk cancel's filter, from either the gRPC or the REST shape. `field` prefixes the
/// names in errors (`filter.statuses[0]`).
pub struct FilterFields<'a> {
    pub field: &'a str,
    pub statuses: &'a [String],
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub workflow_ids: &'a [String],
    pub additional_metadata: &'a [String],
}

pub fn task_filter(fields: FilterFields<'_>) -> Result<TaskFilter> {
    let name = |part: &str, index: usize| format!("{}.{part}[{index}]", fields.field);
    let statuses = fields
        .statuses
        .iter()
        .enumerate()
        .map(|(index, status)| {
            visible_status(status).ok_or_else(|| {
                Error::invalid(format!(
                    "{} must be one of QUEUED, RUNNING, COMPLETED, CANCELLED, FAILED, got {status:?}",
                    name("statuses", index)
                ))
            })
        })
        .collect::<Result<_>>()?;
    let workflow_ids = fields
        .workflow_ids
        .iter()
        .enumerate()
        .map(|(index, id)| uuid(&name("workflowIds", index), id))
        .collect::<Result<_>>()?;
    let additional_metadata = fields
        .additional_metadata
        .iter()
        .enumerate()
        .map(|(index, pair)| {
            pair.split_once(':')
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{} must be \"key:value\", got {pair:?}",
                        name("additionalMetadata", index)
                    ))
                })
        })
        .collect::<Result<_>>()?;
    Ok(TaskFilter {
        since: fields.since,
        until: fields.until,
        statuses,
        workflow_ids,
        additional_metadata,
    })
}

fn visible_status(name: &str) -> Option<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .find(|status| run_status(*status).as_str_name() == name)
}

/// Replay by filter would need to search finished runs in the store; not there yet.
pub fn replay_filter_unsupported() -> Error {
    Error::invalid("filter: replay by filter is not supported by this engine yet; pass externalIds")
}

/// The ids of a cancel or replay (`externalIds`).
pub fn external_ids(ids: &[String]) -> Result<Vec<Uuid>> {
    ids.iter()
        .enumerate()
        .map(|(index, id)| uuid(&format!("externalIds[{index}]"), id))
        .collect()
}

pub fn millis(timestamp: &Timestamp) -> Millis {
    timestamp.seconds * 1000 + i64::from(timestamp.nanos) / 1_000_000
}

pub fn run_status(status: RunStatus) -> v1::RunStatus {
    match status {
        RunStatus::Queued => v1::RunStatus::Queued,
        RunStatus::Running => v1::RunStatus::Running,
        RunStatus::Completed => v1::RunStatus::Completed,
        RunStatus::Failed => v1::RunStatus::Failed,
        RunStatus::Cancelled => v1::RunStatus::Cancelled,
    }
}

pub fn task_status(status: TaskStatus) -> v1::RunStatus {
    run_status(status.visible())
}

/// A task's error as callers see it: only a task that ended badly has one (a retried
/// task that then succeeded does not).
fn visible_error(task: &adze_store::TaskRecord) -> Option<String> {
    matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled)
        .then(|| task.error.clone().unwrap_or_default())
}

pub fn run_details(snapshot: &RunSnapshot) -> v1::GetRunDetailsResponse {
    let status = snapshot.status();
    v1::GetRunDetailsResponse {
        input: snapshot.run.input.clone().into_bytes(),
        status: run_status(status) as i32,
        task_runs: snapshot
            .tasks
            .iter()
            .map(|task| {
                let detail = v1::TaskRunDetail {
                    external_id: task.id.to_string(),
                    status: task_status(task.status) as i32,
                    error: visible_error(task),
                    output: task.output.clone().map(String::into_bytes),
                    readable_id: task.name.clone(),
                    is_evicted: false,
                };
                (task.name.clone(), detail)
            })
            .collect(),
        done: status.is_done(),
        additional_metadata: snapshot.run.additional_metadata.clone().into_bytes(),
        is_evicted: false,
    }
}

pub fn run_finished(snapshot: &RunSnapshot) -> v0::WorkflowRunEvent {
    v0::WorkflowRunEvent {
        workflow_run_id: snapshot.run.id.to_string(),
        event_type: v0::WorkflowRunEventType::Finished as i32,
        event_timestamp: Some(timestamp(
            snapshot.run.finished_at.unwrap_or(snapshot.run.created_at),
        )),
        results: snapshot
            .tasks
            .iter()
            .map(|task| v0::StepRunResult {
                task_run_external_id: task.id.to_string(),
                task_name: task.name.clone(),
                job_run_id: snapshot.run.id.to_string(),
                error: visible_error(task),
                output: task.output.clone(),
            })
            .collect(),
    }
}

pub fn assigned_action(assignment: adze_engine::Assignment) -> v0::AssignedAction {
    let action_type = match assignment.kind {
        adze_engine::AssignmentKind::Start => v0::ActionType::StartStepRun,
        adze_engine::AssignmentKind::Cancel => v0::ActionType::CancelStepRun,
    };
    v0::AssignedAction {
        tenant_id: assignment.tenant_id.to_string(),
        workflow_run_id: assignment.run_id.to_string(),
        get_group_key_run_id: String::new(),
        job_id: assignment.workflow_version_id.to_string(),
        job_name: assignment.workflow_name,
        job_run_id: assignment.run_id.to_string(),
        task_id: assignment.task_id.to_string(),
        task_run_external_id: assignment.task_id.to_string(),
        action_id: assignment.action,
        action_type: action_type as i32,
        action_payload: assignment.payload,
        task_name: assignment.task_name,
        retry_count: assignment.attempt as i32,
        additional_metadata: Some(assignment.additional_metadata),
        child_workflow_index: None,
        child_workflow_key: None,
        parent_workflow_run_id: None,
        priority: 1,
        workflow_id: Some(assignment.workflow_id.to_string()),
        workflow_version_id: Some(assignment.workflow_version_id.to_string()),
        task_inserted_at: Some(timestamp(assignment.created_at)),
    }
}
