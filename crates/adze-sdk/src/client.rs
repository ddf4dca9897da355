//! The client: triggers runs, waits for their results, pushes events, reads run details,
//! and builds workers.

use std::collections::{BTreeMap, HashMap, HashSet};

use adze_proto::v0::{
    BulkPushEventRequest, BulkTriggerWorkflowRequest, PushEventRequest,
    SubscribeToWorkflowRunsRequest, WorkflowRunEvent,
};
use adze_proto::v1::{GetRunDetailsRequest, RunStatus as WireRunStatus, TriggerWorkflowRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::backoff;
use crate::config::Config;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::task::TaskHandle;
use crate::worker::WorkerBuilder;
use crate::workflow::Workflow;

/// A connection to the engine. Cheap to clone; clones share one channel.
#[derive(Clone)]
pub struct Client {
    config: Config,
    connection: Connection,
}

/// A run that was triggered: its id, to wait on or look up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunRef {
    id: String,
}

impl RunRef {
    /// A reference to a run by its id (e.g. one triggered by another SDK).
    pub fn new(id: impl Into<String>) -> Self {
        RunRef { id: id.into() }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Extra settings for a trigger.
#[derive(Clone, Debug, Default)]
pub struct TriggerOptions {
    /// Key/value metadata stored with the run and passed to its tasks.
    pub additional_metadata: Option<Map<String, Value>>,
}

/// The outputs of a completed run, by task name.
#[derive(Clone, Debug)]
pub struct RunOutput {
    run_id: String,
    outputs: BTreeMap<String, Value>,
}

impl RunOutput {
    /// The output of one task, typed by its handle.
    pub fn get<O: DeserializeOwned>(&self, task: &TaskHandle<O>) -> Result<O> {
        self.task(task.name())
    }

    /// The output of the task named `name`, for workflows declared elsewhere.
    pub fn task<O: DeserializeOwned>(&self, name: &str) -> Result<O> {
        let output = self.outputs.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "run {} has no task named {name:?} (its tasks: {:?})",
                self.run_id,
                self.outputs.keys().collect::<Vec<_>>()
            ))
        })?;
        serde_json::from_value(output.clone())
            .map_err(|error| Error::json(format!("the output of task {name:?}"), error))
    }

    /// Every task's output as JSON.
    pub fn outputs(&self) -> &BTreeMap<String, Value> {
        &self.outputs
    }
}

/// Where a run or task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Assigned and running.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
    /// Evicted (durable tasks).
    Evicted,
}

impl RunStatus {
    fn from_wire(status: i32) -> Self {
        match WireRunStatus::try_from(status) {
            Ok(WireRunStatus::Queued) | Err(_) => RunStatus::Queued,
            Ok(WireRunStatus::Running) => RunStatus::Running,
            Ok(WireRunStatus::Completed) => RunStatus::Completed,
            Ok(WireRunStatus::Failed) => RunStatus::Failed,
            Ok(WireRunStatus::Cancelled) => RunStatus::Cancelled,
            Ok(WireRunStatus::Evicted) => RunStatus::Evicted,
        }
    }
}

/// A run as the engine reports it now.
#[derive(Clone, Debug)]
pub struct RunDetails {
    /// The run's status.
    pub status: RunStatus,
    /// Whether the run has finished (completed, failed or cancelled).
    pub done: bool,
    /// The run's input.
    pub input: Value,
    /// The run's metadata.
    pub additional_metadata: Value,
    /// Its tasks by name.
    pub tasks: BTreeMap<String, TaskDetails>,
}

/// One task of a [`RunDetails`].
#[derive(Clone, Debug)]
pub struct TaskDetails {
    /// The task's id within the run.
    pub id: String,
    /// The task's status.
    pub status: RunStatus,
    /// The error, if it failed.
    pub error: Option<String>,
    /// The output, if it completed.
    pub output: Option<Value>,
}

impl Client {
    /// Connects to the engine the configuration names.
    pub async fn connect(config: Config) -> Result<Client> {
        let connection = Connection::open(&config).await?;
        Ok(Client { config, connection })
    }

    /// Connects with the configuration from the `HATCHET_CLIENT_*` variables.
    pub async fn from_env() -> Result<Client> {
        Client::connect(Config::from_env()?).await
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Starts building a worker named `name`.
    pub fn worker(&self, name: impl Into<String>) -> WorkerBuilder {
        WorkerBuilder::new(self.clone(), name.into())
    }

    /// Triggers a run of `workflow` and returns at once with its reference.
    pub async fn trigger<I>(&self, workflow: &Workflow<I>, input: &I) -> Result<RunRef>
    where
        I: Serialize + DeserializeOwned + Send + 'static,
    {
        self.trigger_named(workflow.name(), input, TriggerOptions::default())
            .await
    }

    /// Triggers a run of the workflow called `workflow` (the namespace is prefixed), for
    /// workflows declared elsewhere, e.g. by a Python worker.
    pub async fn trigger_named(
        &self,
        workflow: &str,
        input: &impl Serialize,
        options: TriggerOptions,
    ) -> Result<RunRef> {
        let request = self.trigger_request(workflow, input, &options)?;
        let response = self
            .connection
            .workflows()
            .trigger_workflow(request)
            .await?;
        Ok(RunRef::new(response.into_inner().workflow_run_id))
    }

    /// Triggers one run of `workflow` per input, all or none, in one call (at most 1,000).
    pub async fn bulk_trigger<'a, I>(
        &self,
        workflow: &Workflow<I>,
        inputs: impl IntoIterator<Item = &'a I>,
    ) -> Result<Vec<RunRef>>
    where
        I: Serialize + DeserializeOwned + Send + 'static,
    {
        let workflows = inputs
            .into_iter()
            .map(|input| self.trigger_request(workflow.name(), input, &TriggerOptions::default()))
            .collect::<Result<Vec<_>>>()?;
        let response = self
            .connection
            .workflows()
            .bulk_trigger_workflow(BulkTriggerWorkflowRequest { workflows })
            .await?;
        Ok(response
            .into_inner()
            .workflow_run_ids
            .into_iter()
            .map(RunRef::new)
            .collect())
    }

    fn trigger_request(
        &self,
        workflow: &str,
        input: &impl Serialize,
        options: &TriggerOptions,
    ) -> Result<TriggerWorkflowRequest> {
        let input = serde_json::to_string(input)
            .map_err(|error| Error::json(format!("the input of workflow {workflow:?}"), error))?;
        let additional_metadata = options
            .additional_metadata
            .as_ref()
            .map(|metadata| Value::Object(metadata.clone()).to_string());
        Ok(TriggerWorkflowRequest {
            name: self.config.namespaced(workflow),
            input,
            child_index: Some(0),
            additional_metadata,
            ..Default::default()
        })
    }

    /// Triggers a run of `workflow` and waits for its outputs.
    pub async fn run<I>(&self, workflow: &Workflow<I>, input: &I) -> Result<RunOutput>
    where
        I: Serialize + DeserializeOwned + Send + 'static,
    {
        let run = self.trigger(workflow, input).await?;
        self.wait(&run).await
    }

    /// Waits until the run finishes; a failed task becomes [`Error::TaskFailed`].
    pub async fn wait(&self, run: &RunRef) -> Result<RunOutput> {
        let mut results = self.wait_all(std::slice::from_ref(run)).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(Error::Connection("the result stream ended early".into())))
    }

    /// Waits for many runs over one stream; the results come in the order of `runs`.
    /// A stream that breaks (the engine restarting) is opened again with backoff for the
    /// runs still pending; after twelve failures in a row (about a minute of the engine
    /// being away) the connection error is returned.
    pub async fn wait_all(&self, runs: &[RunRef]) -> Result<Vec<Result<RunOutput>>> {
        let wanted: HashSet<&str> = runs.iter().map(|run| run.id()).collect();
        let mut finished: HashMap<String, Result<RunOutput>> = HashMap::new();
        let mut failures = 0;
        while finished.len() < wanted.len() {
            let pending: HashSet<&str> = wanted
                .iter()
                .filter(|id| !finished.contains_key(**id))
                .copied()
                .collect();
            let before = finished.len();
            match self.collect_results(&pending, &mut finished).await {
                Ok(()) => {}
                Err(error) if error.is_transient() => {
                    failures = if finished.len() > before {
                        1
                    } else {
                        failures + 1
                    };
                    if failures > RESUBSCRIBE_ATTEMPTS {
                        return Err(error);
                    }
                    tracing::warn!(%error, pending = pending.len(), "result stream broke; subscribing again");
                    tokio::time::sleep(backoff::delay(failures)).await;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(runs
            .iter()
            .map(|run| {
                finished.remove(run.id()).unwrap_or_else(|| {
                    Err(Error::InvalidArgument(format!(
                        "run {} is listed more than once",
                        run.id
                    )))
                })
            })
            .collect())
    }

    /// Subscribes to `pending` and moves each run that finishes into `finished` until all
    /// have; a stream that breaks or ends first is an [`Error::Connection`].
    async fn collect_results(
        &self,
        pending: &HashSet<&str>,
        finished: &mut HashMap<String, Result<RunOutput>>,
    ) -> Result<()> {
        let requests: Vec<_> = pending
            .iter()
            .map(|id| SubscribeToWorkflowRunsRequest {
                workflow_run_id: id.to_string(),
            })
            .collect();
        // The request side stays open: closing it may end the subscription early.
        let outgoing = tokio_stream::iter(requests).chain(tokio_stream::pending());
        let mut events = self
            .connection
            .dispatcher()
            .subscribe_to_workflow_runs(outgoing)
            .await?
            .into_inner();
        let mut left = pending.len();
        while left > 0 {
            let event = match events.message().await {
                Ok(Some(event)) => event,
                Ok(None) => return Err(Error::Connection("the result stream ended".into())),
                Err(status) => return Err(stream_error(status)),
            };
            let id = event.workflow_run_id.as_str();
            if pending.contains(id) && !finished.contains_key(id) {
                finished.insert(event.workflow_run_id.clone(), run_output(event));
                left -= 1;
            }
        }
        Ok(())
    }

    /// The run's status, input and per-task outputs or errors, now.
    pub async fn run_details(&self, run: &RunRef) -> Result<RunDetails> {
        let details = self
            .connection
            .admin()
            .get_run_details(GetRunDetailsRequest {
                external_id: run.id.clone(),
            })
            .await?
            .into_inner();
        let tasks = details
            .task_runs
            .into_iter()
            .map(|(name, task)| {
                let output = task
                    .output
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| json_bytes(&bytes, &format!("the output of task {name:?}")))
                    .transpose()?;
                let details = TaskDetails {
                    id: task.external_id,
                    status: RunStatus::from_wire(task.status),
                    error: task.error,
                    output,
                };
                Ok((name, details))
            })
            .collect::<Result<_>>()?;
        Ok(RunDetails {
            status: RunStatus::from_wire(details.status),
            done: details.done,
            input: json_bytes(&details.input, "the run's input")?,
            additional_metadata: json_bytes(&details.additional_metadata, "the run's metadata")?,
            tasks,
        })
    }

    /// Pushes an event; workflows listening on its key (namespaced) start a run with
    /// `payload` as input. Returns the event's id.
    pub async fn push_event(&self, key: &str, payload: &impl Serialize) -> Result<String> {
        let request = self.event_request(key, payload)?;
        let event = self.connection.events().push(request).await?.into_inner();
        Ok(event.event_id)
    }

    /// Pushes many events in one call (at most 1,000); returns their ids in order.
    pub async fn bulk_push_events<'a, P: Serialize + 'a>(
        &self,
        events: impl IntoIterator<Item = (&'a str, &'a P)>,
    ) -> Result<Vec<String>> {
        let events = events
            .into_iter()
            .map(|(key, payload)| self.event_request(key, payload))
            .collect::<Result<Vec<_>>>()?;
        let pushed = self
            .connection
            .events()
            .bulk_push(BulkPushEventRequest { events })
            .await?
            .into_inner();
        Ok(pushed
            .events
            .into_iter()
            .map(|event| event.event_id)
            .collect())
    }

    fn event_request(&self, key: &str, payload: &impl Serialize) -> Result<PushEventRequest> {
        let payload = serde_json::to_string(payload)
            .map_err(|error| Error::json(format!("the payload of event {key:?}"), error))?;
        Ok(PushEventRequest {
            key: self.config.namespaced(key),
            payload,
            event_timestamp: Some(std::time::SystemTime::now().into()),
            ..Default::default()
        })
    }
}

/// How many times in a row a result stream may break before `wait` gives up (with the
/// backoff, about a minute of the engine being away).
const RESUBSCRIBE_ATTEMPTS: u32 = 12;

/// A refusal is the caller's to see; anything else ending a live stream is the
/// connection's doing, worth another subscription.
fn stream_error(status: tonic::Status) -> Error {
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::Unauthenticated
        | Code::PermissionDenied
        | Code::ResourceExhausted => status.into(),
        _ => Error::Connection(format!("the result stream broke: {}", status.message())),
    }
}

fn run_output(event: WorkflowRunEvent) -> Result<RunOutput> {
    let run_id = event.workflow_run_id;
    let mut outputs = BTreeMap::new();
    for result in event.results {
        if let Some(message) = result.error.filter(|error| !error.is_empty()) {
            return Err(Error::TaskFailed {
                run_id,
                task: result.task_name,
                message,
            });
        }
        let output = match result.output.as_deref() {
            None | Some("") => Value::Null,
            Some(text) => serde_json::from_str(text).map_err(|error| {
                Error::json(format!("the output of task {:?}", result.task_name), error)
            })?,
        };
        outputs.insert(result.task_name, output);
    }
    Ok(RunOutput { run_id, outputs })
}

fn json_bytes(bytes: &[u8], what: &str) -> Result<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|error| Error::json(what, error))
}
