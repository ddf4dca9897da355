//! Workflow specs: what a workflow version is, independent of the wire format it came in,
//! and the checks that make it a valid DAG of tasks.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::slots::SlotUnits;
use crate::{Error, Result};

/// The longest name, action or trigger Adze accepts.
pub const MAX_NAME_LEN: usize = 512;
/// The most tasks one workflow may have.
pub const MAX_TASKS: usize = 1_000;

/// One version of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowSpec {
    pub name: String,
    pub description: String,
    /// The version label the SDK sent; versions are numbered by the store regardless.
    pub version: String,
    pub event_triggers: Vec<String>,
    pub tasks: Vec<TaskSpec>,
    /// Runs once when a run's tasks are done and one of them failed for good. It is not
    /// part of the DAG; a run's task records hold it at position `tasks.len()`.
    #[serde(default)]
    pub on_failure: Option<TaskSpec>,
}

/// One task (a "step" in 0.x SDKs) of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The readable id, unique within the workflow: the key of its output.
    pub name: String,
    /// The action id a worker registers to run this task.
    pub action: String,
    pub parents: Vec<String>,
    pub retries: u32,
    pub timeout_ms: u64,
    pub schedule_timeout_ms: u64,
    pub backoff_factor: Option<f64>,
    pub backoff_max_seconds: Option<u32>,
    pub slot_requests: SlotUnits,
    pub is_durable: bool,
}

impl TaskSpec {
    /// A task with Hatchet's defaults: no parents, no retries, a 60 s execution timeout,
    /// a 5 min schedule timeout and one default slot unit.
    pub fn new(name: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            action: action.into(),
            parents: Vec::new(),
            retries: 0,
            timeout_ms: 60_000,
            schedule_timeout_ms: 300_000,
            backoff_factor: None,
            backoff_max_seconds: None,
            slot_requests: crate::slots::default_requests(false),
            is_durable: false,
        }
    }
}

/// The parents and children of every task, by index into [`WorkflowSpec::tasks`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dag {
    pub parents: Vec<Vec<usize>>,
    pub children: Vec<Vec<usize>>,
}

impl Dag {
    /// Tasks with no parents: the ones a new run queues at once.
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        self.parents
            .iter()
            .enumerate()
            .filter(|(_, parents)| parents.is_empty())
            .map(|(index, _)| index)
    }

    /// Every task reachable from `index` through children, not including `index`.
    pub fn descendants(&self, index: usize) -> Vec<usize> {
        let mut seen = vec![false; self.children.len()];
        let mut stack = self.children[index].clone();
        let mut found = Vec::new();
        while let Some(next) = stack.pop() {
            if !std::mem::replace(&mut seen[next], true) {
                found.push(next);
                stack.extend(&self.children[next]);
            }
        }
        found
    }
}

impl WorkflowSpec {
    /// The task at `position` of a run: a DAG task, or the on-failure task after them.
    pub fn task_at(&self, position: usize) -> Option<&TaskSpec> {
        self.tasks.get(position).or_else(|| {
            (position == self.tasks.len())
                .then_some(self.on_failure.as_ref())
                .flatten()
        })
    }

    /// Whether `position` is the on-failure task's.
    pub fn is_on_failure(&self, position: usize) -> bool {
        position == self.tasks.len() && self.on_failure.is_some()
    }

    /// Checks the spec and returns its DAG; the error names the task and the problem.
    pub fn validate(&self) -> Result<Dag> {
        check_name("workflow name", &self.name)?;
        for trigger in &self.event_triggers {
            check_name(&format!("workflow {:?} event trigger", self.name), trigger)?;
        }
        if self.tasks.is_empty() {
            return Err(Error::invalid(format!(
                "workflow {:?} has no tasks: a workflow needs at least one",
                self.name
            )));
        }
        if self.tasks.len() > MAX_TASKS {
            return Err(Error::invalid(format!(
                "workflow {:?} has {} tasks; at most {MAX_TASKS} are allowed",
                self.name,
                self.tasks.len()
            )));
        }
        let mut index_of = HashMap::new();
        for (index, task) in self.tasks.iter().enumerate() {
            check_name("task name", &task.name)?;
            check_name(&format!("task {:?} action", task.name), &task.action)?;
            if index_of.insert(task.name.as_str(), index).is_some() {
                return Err(Error::invalid(format!(
                    "workflow {:?} has two tasks named {:?}: task names must be unique",
                    self.name, task.name
                )));
            }
        }
        let mut dag = Dag {
            parents: vec![Vec::new(); self.tasks.len()],
            children: vec![Vec::new(); self.tasks.len()],
        };
        for (index, task) in self.tasks.iter().enumerate() {
            for parent in &task.parents {
                let Some(&parent_index) = index_of.get(parent.as_str()) else {
                    return Err(Error::invalid(format!(
                        "task {:?} names an unknown parent {parent:?}",
                        task.name
                    )));
                };
                if dag.parents[index].contains(&parent_index) {
                    return Err(Error::invalid(format!(
                        "task {:?} names its parent {parent:?} twice",
                        task.name
                    )));
                }
                dag.parents[index].push(parent_index);
                dag.children[parent_index].push(index);
            }
        }
        if let Some(task) = &self.on_failure {
            check_name("on_failure_task name", &task.name)?;
            check_name(
                &format!("on_failure_task {:?} action", task.name),
                &task.action,
            )?;
            if index_of.contains_key(task.name.as_str()) {
                return Err(Error::invalid(format!(
                    "workflow {:?}: on_failure_task {:?} has the name of a task: names must be unique",
                    self.name, task.name
                )));
            }
            if !task.parents.is_empty() {
                return Err(Error::invalid(format!(
                    "workflow {:?}: on_failure_task {:?} must not have parents",
                    self.name, task.name
                )));
            }
        }
        if let Some(task) = find_cycle(&dag) {
            return Err(Error::invalid(format!(
                "workflow {:?} has a cycle through task {:?}: parents must form a DAG",
                self.name, self.tasks[task].name
            )));
        }
        Ok(dag)
    }
}

/// Checks a client-given name (workflow, task, action, event key, worker): not blank and
/// at most [`MAX_NAME_LEN`] bytes. The error starts with `what`.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }
    Ok(())
}

/// Kahn's algorithm: a task left over once every root chain is peeled off is on a cycle.
fn find_cycle(dag: &Dag) -> Option<usize> {
    let mut waiting: Vec<usize> = dag.parents.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = dag.roots().collect();
    while let Some(task) = ready.pop() {
        for &child in &dag.children[task] {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.push(child);
            }
        }
    }
    waiting.iter().position(|&count| count > 0)
}

/// A JSON object, the only shape Adze accepts for inputs, outputs' containers, payloads
/// and metadata.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Parses `text` as a JSON object; an empty string is the empty object (SDKs send one
/// when there is nothing to say). The error names `field`.
pub fn parse_object(field: &str, text: &str) -> Result<JsonObject> {
    if text.trim().is_empty() {
        return Ok(JsonObject::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(other) => Err(Error::invalid(format!(
            "{field} must be a JSON object, got {}",
            json_kind(&other)
        ))),
        Err(error) => Err(Error::invalid(format!(
            "{field} is not valid JSON: {error}"
        ))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, parents: &[&str]) -> TaskSpec {
        TaskSpec {
            parents: parents.iter().map(|p| p.to_string()).collect(),
            ..TaskSpec::new(name, format!("wf:{name}"))
        }
    }

    fn workflow(tasks: Vec<TaskSpec>) -> WorkflowSpec {
        WorkflowSpec {
            name: "wf".into(),
            description: String::new(),
            version: String::new(),
            event_triggers: vec![],
            tasks,
            on_failure: None,
        }
    }

    #[test]
    fn the_on_failure_task_follows_the_dag_tasks() {
        let mut spec = workflow(vec![task("a", &[])]);
        spec.on_failure = Some(task("a", &[]));
        assert!(
            spec.validate()
                .unwrap_err()
                .message
                .contains("name of a task")
        );
        spec.on_failure = Some(task("cleanup", &["a"]));
        assert!(
            spec.validate()
                .unwrap_err()
                .message
                .contains("must not have parents")
        );
        spec.on_failure = Some(task("cleanup", &[]));
        let dag = spec.validate().unwrap();
        assert_eq!(dag.parents.len(), 1, "not part of the DAG");
        assert_eq!(spec.task_at(1).unwrap().name, "cleanup");
        assert!(spec.is_on_failure(1) && !spec.is_on_failure(0));
        assert!(spec.task_at(2).is_none());
    }

    #[test]
    fn a_diamond_is_a_dag() {
        let spec = workflow(vec![
            task("a", &[]),
            task("b", &["a"]),
            task("c", &["a"]),
            task("d", &["b", "c"]),
        ]);
        let dag = spec.validate().unwrap();
        assert_eq!(dag.roots().collect::<Vec<_>>(), vec![0]);
        assert_eq!(dag.parents[3], vec![1, 2]);
        let mut below_a = dag.descendants(0);
        below_a.sort();
        assert_eq!(below_a, vec![1, 2, 3]);
    }

    #[test]
    fn rejects_what_is_not_a_dag() {
        let message = |spec: WorkflowSpec| spec.validate().unwrap_err().message;
        assert!(message(workflow(vec![])).contains("no tasks"));
        assert!(message(workflow(vec![task("a", &["zz"])])).contains("unknown parent \"zz\""));
        assert!(
            message(workflow(vec![task("a", &[]), task("a", &[])])).contains("two tasks named")
        );
        assert!(message(workflow(vec![task("a", &["b"]), task("b", &["a"])])).contains("cycle"));
        assert!(message(workflow(vec![task("a", &["a"])])).contains("cycle"));
        assert!(message(workflow(vec![task("", &[])])).contains("empty"));
    }

    #[test]
    fn objects_only() {
        assert!(parse_object("input", "{\"a\":1}").is_ok());
        assert!(parse_object("input", "").unwrap().is_empty());
        assert!(
            parse_object("input", "[1]")
                .unwrap_err()
                .message
                .contains("an array")
        );
        assert!(
            parse_object("input", "{")
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
    }
}
