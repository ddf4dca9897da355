//! A two-task DAG: `parent` doubles the input, `child` runs after it and reads its
//! output. Named and shaped like the conformance suite's Python `dag`.

use adze_sdk::{Context, Task, TaskError, TaskHandle, Workflow};
use serde::{Deserialize, Serialize};

/// The run's input.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct DagInput {
    /// The number to work on.
    pub n: i64,
}

/// `parent`'s output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doubled {
    /// Twice the input.
    pub doubled: i64,
}

/// `child`'s output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromParent {
    /// What `parent` returned.
    pub from_parent: i64,
    /// That, plus one.
    pub plus_one: i64,
}

/// The workflow and the handles of its two tasks.
pub struct Dag {
    /// The workflow `dag`.
    pub workflow: Workflow<DagInput>,
    /// The first task.
    pub parent: TaskHandle<Doubled>,
    /// The task that runs after `parent`.
    pub child: TaskHandle<FromParent>,
}

/// Declares the DAG.
pub fn workflow() -> Dag {
    let mut workflow = Workflow::<DagInput>::new("dag");
    let parent = workflow.add(Task::new(
        "parent",
        |input: DagInput, _ctx: Context| async move {
            Ok::<_, TaskError>(Doubled {
                doubled: input.n * 2,
            })
        },
    ));
    let parent_handle = parent.clone();
    let child = workflow.add(
        Task::new("child", move |_input: DagInput, ctx: Context| {
            let parent = parent_handle.clone();
            async move {
                let seen = ctx.parent_output(&parent)?;
                Ok::<_, TaskError>(FromParent {
                    from_parent: seen.doubled,
                    plus_one: seen.doubled + 1,
                })
            }
        })
        .parent(&parent),
    );
    Dag {
        workflow,
        parent,
        child,
    }
}
