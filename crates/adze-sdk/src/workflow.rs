//! A workflow: a named DAG of tasks sharing one input type, optionally triggered by
//! events. Crons are not offered: the engine refuses them today.

use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;

use adze_proto::v1::{CreateTaskOpts, CreateWorkflowVersionRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::task::{Handler, Task, TaskHandle, TaskOptions, duration_text};

/// A workflow whose runs take an input of type `I`.
///
/// ```
/// use adze_sdk::{Context, Task, TaskError, Workflow};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct User { name: String }
///
/// let mut workflow = Workflow::<User>::new("greet-user").on_event("user:create");
/// let greet = workflow.add(Task::new("greet", |user: User, _ctx: Context| async move {
///     Ok::<_, TaskError>(format!("hello {}", user.name))
/// }));
/// // A child reads its parent's output through the parent's handle.
/// let parent = greet.clone();
/// let shout = workflow.add(
///     Task::new("shout", move |_user: User, ctx: Context| {
///         let parent = parent.clone();
///         async move {
///             let greeting: String = ctx.parent_output(&parent)?;
///             Ok::<_, TaskError>(greeting.to_uppercase())
///         }
///     })
///     .parent(&greet),
/// );
/// # let _ = shout;
/// ```
pub struct Workflow<I> {
    definition: Definition,
    input: PhantomData<fn(I)>,
}

/// A workflow with its types erased, as a worker registers and serves it.
#[derive(Clone)]
pub(crate) struct Definition {
    pub(crate) name: String,
    description: String,
    event_triggers: Vec<String>,
    pub(crate) tasks: Vec<TaskEntry>,
}

#[derive(Clone)]
pub(crate) struct TaskEntry {
    pub(crate) name: String,
    pub(crate) options: TaskOptions,
    pub(crate) handler: Handler,
}

impl<I> Workflow<I>
where
    I: Serialize + DeserializeOwned + Send + 'static,
{
    /// An empty workflow named `name` (the namespace, if any, is prefixed when it is
    /// registered or triggered).
    pub fn new(name: impl Into<String>) -> Self {
        Workflow {
            definition: Definition {
                name: name.into(),
                description: String::new(),
                event_triggers: Vec::new(),
                tasks: Vec::new(),
            },
            input: PhantomData,
        }
    }

    /// Also runs when an event with a matching key is pushed (`*` matches any segment
    /// text, as in Hatchet); the event's payload becomes the run's input.
    pub fn on_event(mut self, key: impl Into<String>) -> Self {
        self.definition.event_triggers.push(key.into());
        self
    }

    /// A description shown with the workflow.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.definition.description = description.into();
        self
    }

    /// Adds a task and returns its handle, through which children and clients read its
    /// output.
    pub fn add<O>(&mut self, task: Task<I, O>) -> TaskHandle<O>
    where
        O: Serialize + 'static,
    {
        let handle = task.handle();
        self.definition.tasks.push(TaskEntry {
            name: task.name,
            options: task.options,
            handler: task.handler,
        });
        handle
    }

    /// The workflow's name, without the namespace.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    pub(crate) fn definition(&self) -> &Definition {
        &self.definition
    }
}

impl Definition {
    /// The action id a task's assignments carry: `lower(namespace + workflow):task`.
    pub(crate) fn action(&self, config: &Config, task: &str) -> String {
        format!("{}:{task}", config.namespaced(&self.name).to_lowercase())
    }

    /// The v1 registration, after the checks that need no engine.
    pub(crate) fn registration(&self, config: &Config) -> Result<CreateWorkflowVersionRequest> {
        let invalid =
            |why: String| Error::InvalidArgument(format!("workflow {:?}: {why}", self.name));
        if self.name.is_empty() {
            return Err(Error::InvalidArgument("a workflow needs a name".into()));
        }
        if self.tasks.is_empty() {
            return Err(invalid("has no tasks".into()));
        }
        let mut seen = HashSet::new();
        for task in &self.tasks {
            if !seen.insert(task.name.as_str()) {
                return Err(invalid(format!("two tasks are named {:?}", task.name)));
            }
        }
        Ok(CreateWorkflowVersionRequest {
            name: config.namespaced(&self.name),
            description: self.description.clone(),
            version: String::new(),
            event_triggers: self
                .event_triggers
                .iter()
                .map(|key| config.namespaced(key))
                .collect(),
            tasks: self
                .tasks
                .iter()
                .map(|task| self.task_registration(config, task))
                .collect(),
            default_priority: Some(1),
            ..Default::default()
        })
    }

    fn task_registration(&self, config: &Config, task: &TaskEntry) -> CreateTaskOpts {
        let options = &task.options;
        let slot_requests: BTreeMap<String, i32> = if options.slot_requests.is_empty() {
            BTreeMap::from([("default".to_string(), 1)])
        } else {
            options
                .slot_requests
                .iter()
                .map(|(slot_type, units)| (slot_type.clone(), clamp(*units)))
                .collect()
        };
        CreateTaskOpts {
            readable_id: task.name.clone(),
            action: self.action(config, &task.name),
            timeout: duration_text(options.timeout.unwrap_or(DEFAULT_TIMEOUT)),
            inputs: "{}".into(),
            parents: options.parents.clone(),
            retries: clamp(options.retries),
            schedule_timeout: options.schedule_timeout.map(duration_text),
            slot_requests: slot_requests.into_iter().collect(),
            ..Default::default()
        }
    }

    /// The slot units one task holds, per type, as the worker's local limit counts them.
    pub(crate) fn slot_units(&self, task: &TaskEntry) -> BTreeMap<String, u32> {
        if task.options.slot_requests.is_empty() {
            BTreeMap::from([("default".to_string(), 1)])
        } else {
            task.options.slot_requests.clone()
        }
    }
}

/// Hatchet's default execution timeout, sent explicitly as its SDKs do.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Counts beyond i32 are refused by the engine anyway; saturating keeps that message.
fn clamp(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use crate::task::TaskError;

    fn config(namespace: &str) -> Config {
        let claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"sub":"t"}"#,
        );
        Config::builder()
            .token(format!("eyJ.{claims}.s"))
            .namespace(namespace)
            .build()
            .unwrap()
    }

    #[test]
    fn registration_namespaces_names_events_and_actions() {
        let mut workflow = Workflow::<serde_json::Value>::new("Flow").on_event("user:create");
        let first = workflow.add(Task::new(
            "first",
            |_: serde_json::Value, _: Context| async { Ok::<_, TaskError>(1) },
        ));
        workflow.add(
            Task::new("second", |_: serde_json::Value, _: Context| async {
                Ok::<_, TaskError>(2)
            })
            .parent(&first)
            .slot_request("gpu", 2),
        );
        let request = workflow.definition().registration(&config("NS")).unwrap();
        assert_eq!(request.name, "ns_Flow");
        assert_eq!(request.event_triggers, ["ns_user:create"]);
        assert_eq!(request.tasks[0].action, "ns_flow:first");
        assert_eq!(request.tasks[0].slot_requests.get("default"), Some(&1));
        assert_eq!(request.tasks[1].parents, ["first"]);
        assert_eq!(request.tasks[1].slot_requests.get("gpu"), Some(&2));
        assert_eq!(request.tasks[1].timeout, "60s");
    }

    #[test]
    fn empty_workflows_and_duplicate_tasks_are_refused_by_name() {
        let empty = Workflow::<serde_json::Value>::new("empty");
        let error = empty.definition().registration(&config("")).unwrap_err();
        assert!(
            error.to_string().contains("\"empty\": has no tasks"),
            "{error}"
        );
        let mut twice = Workflow::<serde_json::Value>::new("twice");
        for _ in 0..2 {
            twice.add(Task::new(
                "same",
                |_: serde_json::Value, _: Context| async { Ok::<_, TaskError>(()) },
            ));
        }
        let error = twice.definition().registration(&config("")).unwrap_err();
        assert!(
            error.to_string().contains("two tasks are named \"same\""),
            "{error}"
        );
    }
}
