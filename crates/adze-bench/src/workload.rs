//! What each run of the bench's workflow looks like: its DAG, its input (the latency
//! stamp and padding), and how it is registered.

use std::time::{SystemTime, UNIX_EPOCH};

use adze_proto::v1::{CreateTaskOpts, CreateWorkflowVersionRequest};
use serde::{Deserialize, Serialize};

use crate::connection::Clients;

/// The DAG of one run: `depth` levels; the first holds one task, every later level holds
/// `width` tasks that each depend on every task of the level before. Depth 2 and width 2
/// is a fan-out of two: the engine has no child runs, so fan-out is modelled as a DAG
/// with two children of one parent.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    pub workflow: String,
    pub depth: usize,
    pub width: usize,
    /// The event key that triggers the workflow (used with `--via event`).
    pub event_key: String,
    /// Bytes of padding in each run's input.
    pub payload_bytes: usize,
    /// Execution timeout of each task, in the SDKs' duration format.
    pub timeout: String,
}

/// A run's input. `created_us` is stamped when the producer sends it and read when the
/// task starts (as Hatchet's load test does); `id` makes every execution traceable.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stamp {
    pub id: u64,
    pub created_us: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

/// The part of a worker's action payload the bench reads.
#[derive(Deserialize)]
pub struct ActionPayload {
    pub input: Stamp,
}

impl Shape {
    pub fn tasks_per_run(&self) -> usize {
        1 + (self.depth.saturating_sub(1)) * self.width
    }

    /// The task names, in the order executions are counted.
    pub fn task_names(&self) -> Vec<String> {
        let mut names = vec!["root".to_string()];
        for level in 1..self.depth {
            for index in 0..self.width {
                names.push(format!("l{level}-{index}"));
            }
        }
        names
    }

    fn parents_of(&self, position: usize) -> Vec<String> {
        let names = self.task_names();
        if position == 0 {
            return vec![];
        }
        let level = 1 + (position - 1) / self.width;
        if level == 1 {
            return vec![names[0].clone()];
        }
        let first = 1 + (level - 2) * self.width;
        names[first..first + self.width].to_vec()
    }

    /// The action id a task runs under (what workers register for).
    pub fn action(&self, task: &str) -> String {
        format!("{}:{task}", self.workflow.to_lowercase())
    }

    pub fn actions(&self) -> Vec<String> {
        self.task_names()
            .iter()
            .map(|name| self.action(name))
            .collect()
    }

    pub async fn register(&self, clients: &mut Clients) -> anyhow::Result<()> {
        let tasks = self
            .task_names()
            .iter()
            .enumerate()
            .map(|(position, name)| CreateTaskOpts {
                readable_id: name.clone(),
                action: self.action(name),
                timeout: self.timeout.clone(),
                inputs: "{}".into(),
                parents: self.parents_of(position),
                ..Default::default()
            })
            .collect();
        clients
            .admin
            .put_workflow(CreateWorkflowVersionRequest {
                name: self.workflow.clone(),
                event_triggers: vec![self.event_key.clone()],
                tasks,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// The input of run `id`, stamped now.
    pub fn input(&self, id: u64) -> String {
        let stamp = Stamp {
            id,
            created_us: now_micros(),
            pad: "x".repeat(self.payload_bytes),
        };
        serde_json::to_string(&stamp).expect("a stamp always serializes")
    }
}

/// Wall-clock microseconds: producer and workers run in one process, so stamps compare.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(depth: usize, width: usize) -> Shape {
        Shape {
            workflow: "w".into(),
            depth,
            width,
            event_key: "k".into(),
            payload_bytes: 0,
            timeout: "60s".into(),
        }
    }

    #[test]
    fn fan_out_of_two_is_a_parent_with_two_children() {
        let shape = shape(2, 2);
        assert_eq!(shape.tasks_per_run(), 3);
        assert_eq!(shape.parents_of(1), ["root"]);
        assert_eq!(shape.parents_of(2), ["root"]);
    }

    #[test]
    fn deeper_levels_depend_on_the_whole_level_before() {
        let shape = shape(3, 2);
        assert_eq!(shape.task_names(), ["root", "l1-0", "l1-1", "l2-0", "l2-1"]);
        assert_eq!(shape.parents_of(3), ["l1-0", "l1-1"]);
        assert_eq!(shape.parents_of(4), ["l1-0", "l1-1"]);
    }
}
